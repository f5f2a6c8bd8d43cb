"""Expert usage of a trained routed model over its validation set: per-task expert selection
heatmaps, the shared experts' gate mass per layer, a task-by-task routing similarity matrix and
``expert_usage.json`` with every number (see :mod:`mmase.analysis.expert_usage`).

Example::

    python tools/analysis/expert_usage.py \\
        configs/toy/ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py \\
        work_dirs/toy/iter_300.pth --out work_dirs/toy/expert_usage --max-samples 10
"""
import argparse
import os.path as osp
import pickle
import sys
from typing import Optional, Sequence

from mmengine.config import DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a clone
from mmase.analysis import EXPERT_USAGE_FILES, run_expert_usage  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Expert selection frequency, shared gate mass and task routing similarity '
        'of a routed backbone over the validation set')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint of that config')
    parser.add_argument('--out', required=True, help='output directory (figures and JSON)')
    parser.add_argument('--max-samples', type=int, default=None,
                        help='use only the first N validation images')
    parser.add_argument('--device', default=None, help="e.g. 'cpu' (default: CUDA if any)")
    parser.add_argument('--dpi', type=int, default=100, help='figure resolution (default 100)')
    parser.add_argument('--format', choices=['png', 'pdf', 'svg'], default='png',
                        help='figure file format')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value (xxx=yyy format)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    summary = run_expert_usage(args.config, args.checkpoint, args.out, args.max_samples,
                               args.cfg_options, args.device, dpi=args.dpi, fmt=args.format)
    tasks = summary['tasks']
    print(f"{len(summary['layers'])} routed layers, {summary['num_samples']} images, "
          f"tasks {', '.join(tasks)}")
    for task in tasks:
        masses = [layer['tasks'][task]['shared_mass'] for layer in summary['layers'].values()
                  if 'shared_mass' in layer['tasks'].get(task, {})]
        if masses:
            print(f'  {task}: mean shared-expert gate mass {sum(masses) / len(masses):.3f}')
    matrix = summary['similarity']['matrix']
    if matrix is not None:
        width = max(len(t) for t in tasks)
        print('routing similarity (cosine, mean over layers):')
        print(' ' * (width + 2) + ' '.join(f'{t[:6]:>6}' for t in tasks))
        for task, row in zip(tasks, matrix):
            cells = ' '.join('   n/a' if v is None else f'{v:6.3f}' for v in row)
            print(f'  {task:<{width}}{cells}')
    print(f"wrote {', '.join(f['file'] for f in summary['figures'].values())} and "
          f"{EXPERT_USAGE_FILES['json']} to {args.out}")
    return summary


if __name__ == '__main__':
    try:
        main()
    except (ValueError, KeyError, FileNotFoundError, pickle.UnpicklingError) as error:
        sys.exit(f'expert_usage.py: error: {error}')
