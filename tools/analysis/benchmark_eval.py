"""Time a whole evaluation at dataset scale: loading, model, post-processing and every meter.

N synthetic PASCAL-size images (``tools/misc/make_toy_pascal_mt.py --min-size 375 --max-size
500``, the real ``PASCAL_MT`` layout; or ``--data-root`` of your own) go through the config's own
test loader, model (``CHECKPOINT``, e.g. the README's toy run, for realistic predictions) and
evaluator (``MultiTaskMetric`` computing in-process), run by mmengine's Runner (``runner.test()``)
on one core. A hook and timers split each test iteration into

- ``load``: the data loader (between two iterations);
- ``model``: ``test_step`` less the post-processing;
- ``post``: ``output_restore.restore_prediction`` (the head's resize to the input folded in
  where the head is mmseg's standard one, crop, unflip, resize, activation), per task;
- ``meter/<task>``: each task meter's ``process``; ``metric_other``: the rest of the evaluator;

and prints seconds per image for each stage (CPU seconds of the process, which other work on a
busy machine does not inflate; ``--clock wall`` for wall time), the peak RSS, and the projected
time of PASCAL-Context val (5,105 images) with the model on one process and the meters on
``--workers`` processes (``MultiTaskMetric.num_workers``: they overlap the model, so the wall
time is the larger of the two).

Example::

    python tools/analysis/benchmark_eval.py \\
        configs/toy/ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py work_dirs/toy/iter_300.pth \\
        --num-images 30 --workers 16 --out work_dirs/benchmark_eval.json

``--post-table`` (no config needed) times the post-processing alone, per task, on synthetic head
outputs of a PASCAL image (375 x 500, test resize 384 x 512 padded to 512 x 512, heads at strides
4 and 16): *old*, the head's resize to the padded input (mmseg's ``predict_by_feat``; also timed
alone) then ``restore_prediction``; *new*, ``restore_prediction(..., input_resize=...)`` from the
head's own output (one resize); one thread, after a warm-up, the median CPU ms of ``--repeats``
runs of each, interleaved in the same process (and new's fastest run), and how far new is from old
(labels that differ; largest difference)::

    python tools/analysis/benchmark_eval.py --post-table --repeats 20
"""
import os

for _var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'NUMBA_NUM_THREADS'):
    os.environ.setdefault(_var, '1')  # one core, before numpy / torch load

import argparse  # noqa: E402
import json  # noqa: E402
import os.path as osp  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mmase  # noqa: E402,F401  (registers the modules)
from mmase.engine.experiment_tasks import apply_experiment_tasks  # noqa: E402
from mmase.models.segmentors import output_restore  # noqa: E402

#: PASCAL-Context val images.
PASCAL_VAL = 5105
#: The clock of the stage timings (``--clock``): CPU seconds of this process by default, which a
#: busy machine does not inflate (wall time also counts the waits for a core).
clock = time.process_time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Time a full-size evaluation by stage')
    parser.add_argument('config', nargs='?',
                        help='test config (its test_dataloader / test_evaluator)')
    parser.add_argument('checkpoint', nargs='?', help='model weights (default: the init weights)')
    parser.add_argument('--num-images', type=int, default=20,
                        help='images to generate (default: 20; --data-root: all its val images)')
    parser.add_argument('--data-root', help='a PASCAL_MT folder (default: generate one)')
    parser.add_argument('--min-size', type=int, default=375, help='generated smallest side')
    parser.add_argument('--max-size', type=int, default=500, help='generated largest side')
    parser.add_argument('--workers', type=int, default=16,
                        help='metric processes assumed for the projection (default: 16)')
    parser.add_argument('--edge-matcher', choices=('exact', 'seism'),
                        help='MultiTaskMetric.edge_matcher (default: the config\'s)')
    parser.add_argument('--save-edge-maps', help='also save the edge task\'s predictions and '
                        'ground truths as p<i> / g<i> in this .npz (for benchmark_edges.py --maps)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys, as tools/test.py')
    parser.add_argument('--clock', choices=('cpu', 'wall'), default='cpu',
                        help='time stages in CPU seconds of this process (default) or wall')
    parser.add_argument('--work-dir', help='Runner work_dir (default: a temporary folder)')
    parser.add_argument('--out', help='write the figures as JSON to this file')
    parser.add_argument('--post-table', action='store_true',
                        help='time the post-processing alone, old (two resizes) vs new (one), '
                        'per task on synthetic head outputs; no config needed')
    parser.add_argument('--repeats', type=int, default=20,
                        help='--post-table: timed runs of each (default: 20)')
    return parser.parse_args(argv)


class StageTimer(Hook):
    """Seconds of each test iteration: data loading (since the previous one ended) and the rest."""

    def __init__(self):
        self.load, self.step, self.images = [], [], 0
        self._mark = None

    def before_test_epoch(self, runner):
        self._mark = clock()

    def before_test_iter(self, runner, batch_idx, data_batch=None):
        now = clock()
        self.load.append(now - self._mark)
        self._mark = now

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        now = clock()
        self.step.append(now - self._mark)
        self.images += len(outputs)
        self._mark = now


def timed(function, totals, key):
    """``function`` adding its seconds to ``totals[key]`` (``key`` may be a callable of the
    arguments)."""
    def wrapper(*args, **kwargs):
        start = clock()
        try:
            return function(*args, **kwargs)
        finally:
            name = key(*args, **kwargs) if callable(key) else key
            totals[name] += clock() - start
    return wrapper


def keep_inputs(function, store):
    """``function(pred, gt)`` that also appends copies of its inputs to ``store``."""
    def wrapper(pred, gt):
        store.append((pred.copy(), gt.copy()))
        return function(pred, gt)
    return wrapper


def warm_up() -> float:
    """Compile (or load from numba's cache) the edge meter's and the post-processing's loops on
    tiny inputs, so that no timed image pays for it; returns the seconds it took."""
    import types

    import numpy as np

    from mmase.evaluation import EdgeMeter
    start = time.perf_counter()
    gt = np.zeros((12, 12), np.uint8)
    gt[6] = 1
    EdgeMeter().process(np.linspace(0, 1, 144).reshape(12, 12), gt)
    for activation, channels in (('argmax', 3), ('identity', 1)):
        for input_resize in (None, ((8, 8), False)):
            output_restore.restore_prediction(
                torch.zeros(1, channels, 4, 4), dict(ori_shape=(6, 6)),
                types.SimpleNamespace(activation=activation, flip_sign=None),
                input_resize=input_resize)
    return time.perf_counter() - start


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (1, C, h, w), edges replicated."""
    import torch.nn.functional as F
    radius = int(3 * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-t ** 2 / (2 * sigma ** 2))
    kernel = (kernel / kernel.sum()).repeat(x.shape[1], 1, 1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode='replicate'),
                 kernel.view(x.shape[1], 1, 1, -1), groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode='replicate'),
                    kernel.view(x.shape[1], 1, -1, 1), groups=x.shape[1])


def head_output(kind: str, channels: int, size, generator) -> torch.Tensor:
    """A synthetic (1, C, h, w) float32 head output.

    - ``smooth``: smooth random logits with a clear winner most places: a coarse random layout
      (one class per 16 x 16 head pixels, +6, blurred over 4) plus smooth noise of std ~1;
    - ``trained``: a trained-looking map: Voronoi regions of 6 of the classes (background among
      them), +12 inside each class's regions blurred over h / 64 pixels, -4 elsewhere, -8 for
      the absent classes, pixel noise of std 0.5;
    - ``noise``: smooth Gaussian fields (normals, probabilities).
    """
    import torch.nn.functional as F
    h, w = size
    coarse = (max(2, h // 8), max(2, w // 8))
    noise = F.interpolate(torch.randn(1, channels, *coarse, generator=generator), size=size,
                          mode='bicubic', align_corners=False)
    if kind == 'noise':
        return noise.contiguous()
    if kind == 'smooth':
        layout = torch.randint(0, channels, (-(-h // 16), -(-w // 16)), generator=generator)
        onehot = F.one_hot(layout, channels).permute(2, 0, 1)[None].float()
        return (6 * _blur(F.interpolate(onehot, size=size), 4.0) + noise).contiguous()
    present = torch.cat([torch.zeros(1, dtype=torch.long),
                         torch.randperm(channels - 1, generator=generator)[:5] + 1])
    seeds = torch.rand(12, 2, generator=generator) * torch.tensor([h, w])
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing='ij')
    nearest = ((yy[None] - seeds[:, 0, None, None]) ** 2
               + (xx[None] - seeds[:, 1, None, None]) ** 2).argmin(0)
    labels = present[torch.randint(0, len(present), (12, ), generator=generator)][nearest]
    onehot = F.one_hot(labels, channels).permute(2, 0, 1)[None].float()
    logits = -4 + 12 * _blur(onehot, max(1.0, h / 64))
    absent = torch.ones(channels, dtype=torch.bool)
    absent[present] = False
    logits[:, absent] -= 4
    return (logits + 0.5 * torch.randn(1, channels, h, w, generator=generator)).contiguous()


#: --post-table rows: task, activation, channels, kind of synthetic head output.
POST_TASKS = (('semseg', 'argmax', 59, 'smooth'), ('semseg', 'argmax', 59, 'trained'),
              ('human_parts', 'argmax', 7, 'smooth'), ('normals', 'normalize', 3, 'noise'),
              ('sal', 'sigmoid', 1, 'noise'), ('edge', 'sigmoid', 1, 'noise'))


def post_table(repeats: int = 20, strides=(4, 16), ori=(375, 500), img=(384, 512),
               pad=(512, 512)) -> list:
    """Old (the head's resize to ``pad``, then ``restore_prediction``) vs new (one resize from the
    head output) CPU ms per task, one thread, medians of ``repeats`` after a warm-up; also the
    share of labels that differ and the largest difference of values (new vs old)."""
    import types

    from mmseg.models.utils import resize
    meta = dict(ori_shape=ori, img_shape=img, pad_shape=pad,
                padding_size=(0, pad[1] - img[1], 0, pad[0] - img[0]))
    generator = torch.Generator().manual_seed(0)
    rows = []
    for stride in strides:
        size = (pad[0] // stride, pad[1] // stride)
        for task, activation, channels, kind in POST_TASKS:
            spec = types.SimpleNamespace(activation=activation, flip_sign=(0, 1)
                                         if activation == 'normalize' else None, name=task)
            out = head_output(kind, channels, size, generator)

            def head_resize():
                return resize(out, size=pad, mode='bilinear', align_corners=False)

            def old():
                return output_restore.restore_prediction(head_resize(), meta, spec)

            def new():
                return output_restore.restore_prediction(out, meta, spec,
                                                         input_resize=(pad, False))

            runs = dict(old=old, resize=head_resize, new=new)
            seconds = {name: [] for name in runs}
            for run in runs.values():
                run()  # warm-up
            for _ in range(repeats):  # interleaved: a busy machine slows all alike
                for name, run in runs.items():
                    start = time.process_time()
                    run()
                    seconds[name].append(time.process_time() - start)
            times = {name: 1e3 * sorted(s)[len(s) // 2] for name, s in seconds.items()}
            best = {name: 1e3 * min(s) for name, s in seconds.items()}
            a, b = new(), old()
            row = dict(task=task, channels=channels, head=f'{size[0]}x{size[1]}', kind=kind,
                       old_ms=times['old'], old_resize_ms=times['resize'], new_ms=times['new'],
                       old_min_ms=best['old'], new_min_ms=best['new'])
            if a.dtype == torch.int64:
                row['labels_differ'] = (a != b).float().mean().item()
            else:
                row['max_abs_diff'] = (a - b).abs().max().item()
            rows.append(row)
    print(f'post-processing to {ori[0]} x {ori[1]} (input {img[0]} x {img[1]} padded to '
          f'{pad[0]} x {pad[1]}), CPU ms, one thread, median of {repeats}:')
    print(f'  {"task (channels)":18s} {"head":8s} {"map":8s} {"old":>7s} {"(resize)":>9s} '
          f'{"new":>7s} {"new min":>8s}  new vs old')
    for row in rows:
        check = (f'{100 * row["labels_differ"]:.4f} % labels differ' if 'labels_differ' in row
                 else f'max |diff| {row["max_abs_diff"]:.1e}')
        print(f'  {row["task"] + " (" + str(row["channels"]) + ")":18s} {row["head"]:8s} '
              f'{row["kind"]:8s} {row["old_ms"]:7.2f} {row["old_resize_ms"]:9.2f} '
              f'{row["new_ms"]:7.2f} {row["new_min_ms"]:8.2f}  {check}')
    return rows


def make_data(args, folder):
    """Generate the synthetic PASCAL-size val set (the generator of
    ``tools/misc/make_toy_pascal_mt.py``)."""
    from mmase.datasets.toy_pascal_mt import make_toy_pascal_mt
    make_toy_pascal_mt(folder, num_train=1, num_val=args.num_images, min_size=args.min_size,
                       max_size=args.max_size)
    return folder


def build_runner(args, data_root, work_dir):
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    apply_experiment_tasks(cfg)  # the top-level tasks, after --cfg-options
    cfg.work_dir = work_dir
    cfg.load_from = args.checkpoint
    cfg.launcher = 'none'
    loader = cfg.test_dataloader
    loader.batch_size = 1
    loader.num_workers = 0  # loading timed in this process
    loader.persistent_workers = False
    loader.dataset.data_root = data_root
    evaluator = cfg.test_evaluator
    evaluator.num_workers = 0  # the meters timed in this process
    evaluator.pop('edge_save_dir', None)
    if args.edge_matcher:
        evaluator.edge_matcher = args.edge_matcher
    cfg.default_hooks.pop('visualization', None)
    cfg.log_level = 'WARNING'
    return Runner.from_cfg(cfg)


def main(argv=None):
    args = parse_args(argv)
    if args.post_table:
        if args.repeats < 1:
            raise SystemExit('--repeats must be >= 1')
        torch.set_num_threads(1)
        rows = post_table(args.repeats)
        if args.out:
            os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
            with open(args.out, 'w') as f:
                json.dump(rows, f, indent=1)
        return rows
    if args.config is None:
        raise SystemExit('a config is needed (or --post-table)')
    if args.num_images < 1 or args.workers < 1:
        raise SystemExit('--num-images and --workers must be >= 1')
    torch.set_num_threads(1)
    global clock
    clock = time.process_time if args.clock == 'cpu' else time.perf_counter
    compile_seconds = warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        data_root = args.data_root or make_data(args, osp.join(tmp, 'pascal_mt'))
        runner = build_runner(args, data_root, args.work_dir or osp.join(tmp, 'work'))
        seconds = defaultdict(float)
        timer = StageTimer()
        runner.register_hook(timer, priority='LOWEST')
        metric = runner.test_evaluator.metrics[0]
        saved = []
        for task in metric.tasks:  # each meter's process, timed
            meter = metric._meter(task)
            meter.process = timed(meter.process, seconds, f'meter/{task}')
            if args.save_edge_maps and task == 'edge':
                meter.process = keep_inputs(meter.process, saved)
        metric.process = timed(metric.process, seconds, 'metric')
        restore = output_restore.restore_prediction
        output_restore.restore_prediction = timed(restore, seconds,
                                                  lambda out, meta, spec, *a, **k:
                                                  f'post/{spec.name}')
        try:
            metrics = runner.test()
        finally:
            output_restore.restore_prediction = restore
    if args.save_edge_maps:
        import numpy as np
        np.savez_compressed(args.save_edge_maps, **{f'p{i}': p for i, (p, _) in enumerate(saved)},
                            **{f'g{i}': g for i, (_, g) in enumerate(saved)})
    images = timer.images
    stages = {'load': sum(timer.load[1:]) / max(len(timer.load) - 1, 1)}  # first: warm-up
    post = sum(v for k, v in seconds.items() if k.startswith('post/'))
    meters = sum(v for k, v in seconds.items() if k.startswith('meter/'))
    stages['model'] = (sum(timer.step) - seconds['metric'] - post) / images
    for key in sorted(seconds):
        if key.startswith(('post/', 'meter/')):
            stages[key] = seconds[key] / images
    stages['post'] = post / images
    stages['meters'] = meters / images
    stages['metric_other'] = (seconds['metric'] - meters) / images
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    evaluation = stages['post'] + seconds['metric'] / images  # all but loading and the model
    model_side = stages['load'] + stages['model'] + stages['post']
    metric_side = seconds['metric'] / images / args.workers
    projection = dict(images=PASCAL_VAL, workers=args.workers,
                      model_process_minutes=PASCAL_VAL * model_side / 60,
                      metric_workers_minutes=PASCAL_VAL * metric_side / 60,
                      wall_minutes=PASCAL_VAL * max(model_side, metric_side) / 60,
                      evaluation_one_core_minutes=PASCAL_VAL * evaluation / 60)
    print(f'{images} images of {args.min_size}-{args.max_size} px, one core; {args.clock} '
          f'seconds per image:')
    for key, value in stages.items():
        print(f'  {key:22s} {value:8.4f}')
    print(f'  {"evaluation (no model)":22s} {evaluation:8.4f}  (post-processing + evaluator)')
    print(f'peak RSS {peak_rss_mb:.0f} MiB; compiled loops ready in {compile_seconds:.1f} s '
          f'(once per machine: numba caches them)')
    print(f'PASCAL-Context val ({PASCAL_VAL}): model process '
          f'{projection["model_process_minutes"]:.1f} min, meters on {args.workers} workers '
          f'{projection["metric_workers_minutes"]:.1f} min, '
          f'wall ~{projection["wall_minutes"]:.1f} min')
    result = dict(config=args.config, checkpoint=args.checkpoint, images=images, clock=args.clock,
                  seconds_per_image=stages, evaluation_seconds_per_image=evaluation,
                  peak_rss_mb=peak_rss_mb, compile_seconds=compile_seconds,
                  projection=projection, metrics=metrics)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)
        print(f'wrote {args.out}')
    return result


if __name__ == '__main__':
    main()
