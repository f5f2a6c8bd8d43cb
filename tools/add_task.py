"""Find the old task a new task should start from, from routing statistics, and write the
resolved task-addition config.

    python tools/add_task.py configs/task_addition/add-edge-frozen_*.py --out DIR \
        [--checkpoint CKPT] [--probe-iters 30] [--max-samples 16] [--cfg-options K=V ...]

For every new task whose ``model.task_addition.router_init`` is ``'most_similar'`` (ours,
docs/adding_a_task.md): the model is built with the new task's router rows and task embedding
set to the mean of the old tasks' rows, every old task frozen, and only the new task's head,
routers and embedding are trained for ``--probe-iters`` iterations on the config's training
data (the new task's loss alone). Then its routing statistics are recorded on ``--max-samples``
validation images for every task, and the most similar old task is the one whose expert
selection distributions are closest (cosine, mean over the routed layers:
:func:`mmase.analysis.expert_usage.routing_similarity`). Output: ``DIR/router_similarity.json``
(the similarity row of each new task, the choice), ``DIR/probe/`` (the probe run's logs) and
``DIR/<config name>`` with ``router_init`` resolved, ready for ``tools/train.py``. The probe is
an ordinary mmengine Runner run of the config (no hand-written loop).
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mmase  # noqa: E402,F401  (registers the modules)
from mmase.engine.experiment_tasks import apply_experiment_tasks  # noqa: E402
from mmase.analysis.expert_usage import (collect_routing, find_routed_layers,  # noqa: E402
                                         routing_similarity, summarize_routing)
from mmase.models.segmentors.task_addition import checkpoint_tasks  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='task-addition config (model.task_addition)')
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--checkpoint', help='overrides model.task_addition.checkpoint')
    parser.add_argument('--probe-iters', type=int, default=30,
                        help='iterations training the new task alone (default 30)')
    parser.add_argument('--max-samples', type=int, default=16,
                        help='validation images whose routing is recorded (default 16)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys (xxx=yyy), as in tools/train.py; they are '
                        'kept in the resolved config')
    return parser.parse_args(argv)


def probe_similarity(cfg: Config, new_tasks, probe_iters: int, max_samples: int,
                     work_dir: str) -> tuple:
    """Similarity row (old task -> cosine) of each new task after a probe (see module).

    The probe is an ordinary mmengine run of ``cfg`` in ``work_dir`` (the new tasks' router rows
    and embeddings at the old tasks' mean, every old task frozen, ``probe_iters`` iterations, no
    validation, no checkpoint); its routing is then recorded on the validation data."""
    probe = copy.deepcopy(cfg)
    addition = probe.model.task_addition
    addition.router_init = {t: 'mean' for t in new_tasks}
    addition.frozen_tasks = 'old'
    probe.work_dir = work_dir
    probe.train_cfg = dict(type='IterBasedTrainLoop', max_iters=probe_iters)
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator', 'test_dataloader', 'test_cfg',
                'test_evaluator', 'load_from'):
        probe[key] = None
    probe.resume = False
    probe.default_hooks.checkpoint = None
    probe.launcher = 'none'
    # the probe's iterations count from 0: a scheduler of the full run would start it in warm-up
    probe.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0,
                                  end=probe_iters)]
    runner = Runner.from_cfg(probe)
    runner.train()
    model = runner.model
    val_loader = Runner.build_dataloader(cfg.val_dataloader, seed=0)
    stats, seen = collect_routing(model, model.backbone, val_loader, max_samples)
    summary = summarize_routing(stats, find_routed_layers(model.backbone), model.tasks, seen)
    matrix, layers = routing_similarity(summary)
    if matrix is None:
        raise ValueError('no routed layer with a choice of experts: the routing similarity is '
                         'undefined; name a source task in task_addition.router_init')
    tasks = summary['tasks']
    old = [t for t in tasks if t not in new_tasks]
    return {u: {t: float(matrix[tasks.index(u), tasks.index(t)]) for t in old}
            for u in new_tasks}, layers


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(0)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    apply_experiment_tasks(cfg)  # the top-level tasks, after --cfg-options
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    addition = cfg.model.get('task_addition')
    if not addition:
        raise ValueError(f'{args.config}: model.task_addition is not set')
    if args.checkpoint:
        addition.checkpoint = args.checkpoint
    from mmase.engine.checkpoint_check import load_checkpoint_file
    old_tasks = checkpoint_tasks(load_checkpoint_file(addition.checkpoint, map_location='cpu'),
                                 addition.get('checkpoint_tasks'), addition.checkpoint)
    router_init = dict(addition.get('router_init') or {})
    wanted = [t for t, s in router_init.items() if s == 'most_similar']
    result = dict(checkpoint=addition.checkpoint, checkpoint_tasks=list(old_tasks),
                  measure='cosine similarity of expert selection distributions after a '
                  f'{args.probe_iters}-iteration probe of the new task alone, '
                  f'{args.max_samples} validation images', tasks={})
    if wanted:
        rows, layers = probe_similarity(cfg, wanted, args.probe_iters, args.max_samples,
                                        osp.join(args.out, 'probe'))
        result['layers'] = layers
        for task, row in rows.items():
            chosen = max(row, key=row.get)
            router_init[task] = chosen
            result['tasks'][task] = dict(similarity=row, most_similar=chosen)
            print(f'{task}: routing similarity to the old tasks '
                  + ', '.join(f'{t} {v:.3f}' for t, v in row.items()) + f' -> {chosen}')
    addition.router_init = router_init
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'router_similarity.json'), 'w') as f:
        json.dump(result, f, indent=2)
    resolved = osp.join(args.out, osp.basename(args.config))
    cfg.dump(resolved)
    print(f'resolved config: {resolved}  (router_init={router_init})')
    return result


if __name__ == '__main__':
    main()
