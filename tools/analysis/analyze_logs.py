"""Plot per-task losses and metrics from mmengine's scalar logs (mmase's version of mmseg's
``tools/analysis_tools/analyze_logs.py``: same arguments; mmase's keys are
``<task>.<loss>`` for training losses and ``<task>/<metric>`` for validation metrics).

One panel per key, every log as a line (train losses against the iteration; validation metrics
against the iteration they were computed at, with markers). Axes are labelled and fitted to the
data. ``--keys`` takes names or shell-style patterns; default: the total loss, every per-task
loss and every task metric of the first log (with Δm, without the per-task deltas). No seaborn
needed (``--style`` maps mmseg's
seaborn style names onto matplotlib).

Example::

    python tools/analysis/analyze_logs.py work_dirs/x/*/vis_data/scalars.json --out curves.pdf
"""
import argparse
import fnmatch
import json
import math
import os.path as osp
from collections import defaultdict
from typing import Dict, List

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: mmseg's seaborn style names -> (axes facecolour, grid).
STYLES = dict(dark=('#EAEAF2', False), darkgrid=('#EAEAF2', True), white=('white', False),
              whitegrid=('white', True), ticks=('white', False))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Analyze json logs (per-task losses, metrics)')
    parser.add_argument('json_logs', type=str, nargs='+',
                        help='scalars.json (or <timestamp>.json) of runs')
    parser.add_argument('--keys', type=str, nargs='+', default=None,
                        help='keys or patterns to plot, e.g. "*.loss_*" "semseg/mIoU"')
    parser.add_argument('--title', type=str, help='title of figure')
    parser.add_argument('--legend', type=str, nargs='+', default=None,
                        help='legend of each log (default: its file name)')
    parser.add_argument('--backend', type=str, default=None, help='unused (Agg); mmseg flag')
    parser.add_argument('--style', type=str, default='whitegrid', choices=sorted(STYLES),
                        help='style of the axes')
    parser.add_argument('--out', type=str, default=None,
                        help='output file (.png / .pdf / .svg); default analyze_logs.png')
    parser.add_argument('--dpi', type=int, default=150, help='resolution of raster output')
    parser.add_argument('--format', choices=['png', 'pdf', 'svg'], default=None,
                        help='file format when --out has no suffix')
    args = parser.parse_args(argv)
    if args.legend is not None and len(args.legend) != len(args.json_logs):
        parser.error(f'--legend needs one name per log ({len(args.json_logs)}), got '
                     f'{len(args.legend)}')
    return args


def load_json_log(path: str) -> Dict[str, List[tuple]]:
    """key -> [(step, value)] of one mmengine json log (one dict a line)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'log file {path} not found')
    series = defaultdict(list)
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f'{path}:{number}: not a json line ({err})') from None
            step = record.get('step', record.get('iter'))
            for key, value in record.items():
                if key in ('step', 'iter', 'epoch') or not isinstance(value, (int, float)):
                    continue
                series[key].append((step, float(value)))
    return dict(series)


def default_keys(series: Dict[str, list]) -> List[str]:
    keys = [k for k in series if k == 'loss' or '.loss' in k or k.startswith('loss_')]
    metrics = [k for k in series if '/' in k and not k.endswith('/loss')
               and (not k.startswith('multitask/delta_') or k == 'multitask/delta_m')]
    return keys + metrics


def select_keys(patterns, series: Dict[str, list]) -> List[str]:
    keys = []
    for pattern in patterns:
        found = [k for k in series if fnmatch.fnmatchcase(k, pattern)]
        if not found:
            raise ValueError(f'--keys {pattern}: no such key in the first log; it has '
                             f'{sorted(series)}')
        keys += [k for k in found if k not in keys]
    return keys


def plot(logs: List[Dict[str, list]], names: List[str], keys: List[str], style: str,
         title=None) -> Figure:
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows), dpi=100)
    FigureCanvasAgg(fig)
    face, grid = STYLES[style]
    for i, key in enumerate(keys):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.set_facecolor(face)
        values_all = []
        for log, name in zip(logs, names):
            points = [(s, v) for s, v in log.get(key, []) if s is not None and math.isfinite(v)]
            if not points:
                continue
            steps, values = zip(*points)
            values_all += values
            metric = '/' in key
            ax.plot(steps, values, label=name, marker='o' if metric else None,
                    linewidth=1.2 if metric else 0.8, markersize=4)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel('iteration')
        ax.set_ylabel(key.split('/')[-1] if '/' in key else key.split('.')[-1])
        if values_all:
            low, high = min(values_all), max(values_all)
            pad = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
            ax.set_ylim(low - pad, high + pad)
        ax.grid(grid, alpha=0.5)
        if len(logs) > 1 or i == 0:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def main(argv=None):
    args = parse_args(argv)
    logs = [load_json_log(p) for p in args.json_logs]
    keys = select_keys(args.keys, logs[0]) if args.keys else default_keys(logs[0])
    if not keys:
        raise ValueError(f'{args.json_logs[0]}: no loss or metric keys to plot')
    names = args.legend or [osp.basename(osp.dirname(osp.dirname(p))) or osp.basename(p)
                            for p in args.json_logs]
    fig = plot(logs, names, keys, args.style, args.title)
    out = args.out or 'analyze_logs.png'
    if args.format and not osp.splitext(out)[1]:
        out = f'{out}.{args.format}'
    fig.savefig(out, dpi=args.dpi)
    print(f'save curve to: {out}')
    return fig


if __name__ == '__main__':
    main()
