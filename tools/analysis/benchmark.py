"""Inference speed (images / s) of a multi-task model on its test set (mmase's version of
mmseg's ``tools/analysis_tools/benchmark.py``, same flags; every task predicted per image).

The checkpoint is loaded strictly (``mmase.apis.init_model``); the first ``--num-warmup``
batches are not timed; on CUDA the clock waits for the device. Results go to
``<work-dir>/fps_<timestamp>.json``. ``--merge-lora`` (ours) folds plain LoRA into the frozen
weights first (:func:`mmase.models.adapters.merge_lora`).

Example::

    python tools/analysis/benchmark.py CONFIG CHECKPOINT --repeat-times 3
"""
import argparse
import json
import os.path as osp
import sys
import time

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.runner import Runner
from mmengine.utils import mkdir_or_exist

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a clone
import mmase  # noqa: E402,F401
from mmase.engine.experiment_tasks import apply_experiment_tasks  # noqa: E402
from mmase.apis import init_model  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Benchmark a multi-task model (images / s)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--log-interval', type=int, default=50, help='interval of logging')
    parser.add_argument('--work-dir', help='the results are dumped there as json')
    parser.add_argument('--repeat-times', type=int, default=1)
    parser.add_argument('--num-iters', type=int, default=200,
                        help='timed + warm-up batches per run (mmseg: 200)')
    parser.add_argument('--num-warmup', type=int, default=5, help='untimed first batches')
    parser.add_argument('--device', default=None, help='default: cuda if available, else cpu')
    parser.add_argument('--merge-lora', action='store_true',
                        help='fold plain LoRA into the frozen weights first '
                        '(mmase.models.adapters.merge_lora; routed experts stay) (ours)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value (xxx=yyy format)')
    args = parser.parse_args(argv)
    if args.num_iters <= args.num_warmup:
        parser.error(f'--num-iters {args.num_iters} must exceed --num-warmup {args.num_warmup}')
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    apply_experiment_tasks(cfg)  # the top-level tasks, after --cfg-options
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    work_dir = args.work_dir or osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    mkdir_or_exist(osp.abspath(work_dir))
    json_file = osp.join(work_dir, f'fps_{time.strftime("%Y%m%d_%H%M%S")}.json')
    torch.backends.cudnn.benchmark = False
    model = init_model(cfg, args.checkpoint, device=device)
    if not device.startswith('cuda'):
        model = revert_sync_batchnorm(model)
    merged = []
    if args.merge_lora:
        from mmase.models.adapters import merge_lora
        model.eval()
        merged = merge_lora(model)
        print(f'merged plain LoRA of {len(merged)} layers')
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    result = dict(config=args.config, unit='img / s', tasks=list(model.tasks), device=device,
                  merged_lora_layers=len(merged))
    runs = []
    for run in range(args.repeat_times):
        print(f'Run {run + 1}:')
        loader = Runner.build_dataloader(cfg.test_dataloader)
        timed, images, done = 0.0, 0, 0
        while done < args.num_iters:
            for data in loader:
                data = model.data_preprocessor(data, False)
                sync()
                start = time.perf_counter()
                with torch.no_grad():
                    model(data['inputs'], data['data_samples'], mode='predict')
                sync()
                elapsed = time.perf_counter() - start
                done += 1
                if done > args.num_warmup:
                    timed += elapsed
                    images += len(data['data_samples'])
                    if done % args.log_interval == 0:
                        print(f'Done image [{done:<3}/ {args.num_iters}], '
                              f'fps: {images / timed:.2f} img / s')
                if done == args.num_iters:
                    break
        fps = images / timed
        print(f'Overall fps: {fps:.2f} img / s\n')
        result[f'overall_fps_{run + 1}'] = round(fps, 2)
        runs.append(fps)
    result['average_fps'] = round(float(np.mean(runs)), 2)
    result['fps_variance'] = round(float(np.var(runs)), 4)
    print(f'Average fps of {args.repeat_times} evaluations: {result["average_fps"]}')
    print(f'The variance of {args.repeat_times} evaluations: {result["fps_variance"]}')
    with open(json_file, 'w') as f:
        json.dump(result, f, indent=4)
    print(f'written {json_file}')
    return result


if __name__ == '__main__':
    main()
