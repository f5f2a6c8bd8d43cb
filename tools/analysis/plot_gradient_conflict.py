"""Plot the gradient conflict between tasks over training, one line per method.

Reads ``gradient_conflict.json`` (written by ``GradientConflictHook``) from each work dir and
draws one panel per parameter group (``lora``, ``sparse_experts``, ``shared_experts``, ``routers``,
``other``, ``all``): x the iteration, y the mean over task pairs of the cosine similarity of the
two tasks' gradients (a band from the lowest to the highest pair). It prints, per method and
group, the mean cosine and the fraction of negative (conflicting) pairs over the first and the
last third of the recorded iterations, and writes them to ``--summary`` as JSON.

Example::

    python tools/analysis/plot_gradient_conflict.py work_dirs/gc_mtl work_dirs/gc_lora-moe \\
        work_dirs/gc_fixed work_dirs/gc_ase --names MTL LoRA-MoE "naive shared" ASE \\
        --out gradient_conflict.png
"""
import argparse
import json
import math
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a clone
from mmase.engine.hooks.gradient_conflict_hook import (  # noqa: E402
    GRADIENT_CONFLICT_FORMAT, GROUPS)


def load_record(path: str) -> dict:
    """The hook's record from a work dir or a JSON file; errors name the path."""
    file = osp.join(path, 'gradient_conflict.json') if osp.isdir(path) else path
    if not osp.isfile(file):
        raise FileNotFoundError(f'{file!r} not found: train with GradientConflictHook in '
                                f'custom_hooks (configs/toy/gradient_conflict/)')
    with open(file) as f:
        record = json.load(f)
    if record.get('format') != GRADIENT_CONFLICT_FORMAT or not record.get('iters'):
        raise ValueError(f'{file!r} is not a {GRADIENT_CONFLICT_FORMAT} record with iterations')
    return record


def series(record: dict, group: str) -> Dict[str, np.ndarray]:
    """``iters``, and the ``mean`` / ``min`` / ``max`` over task pairs of ``group`` (NaN pairs
    left out; NaN where an iteration has none)."""
    iters = sorted(int(i) for i in record['iters'])
    out = dict(iters=np.array(iters), mean=[], min=[], max=[], negative=[])
    for it in iters:
        values = [v for v in record['iters'][str(it)].get(group, {}).values()
                  if v is not None and not math.isnan(v)]
        arr = np.array(values) if values else np.array([math.nan])
        out['mean'].append(float(np.mean(arr)))
        out['min'].append(float(np.min(arr)))
        out['max'].append(float(np.max(arr)))
        out['negative'].append(float(np.mean(arr < 0)) if values else math.nan)
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def summarise(records: Dict[str, dict], groups: Sequence[str]) -> Dict[str, Dict[str, dict]]:
    """Per method and group: mean cosine and fraction of negative pairs over the first and last
    third of the recorded iterations."""
    out: Dict[str, Dict[str, dict]] = {}
    for name, record in records.items():
        for group in groups:
            s = series(record, group)
            if np.all(np.isnan(s['mean'])):
                continue
            third = max(1, len(s['iters']) // 3)
            parts = dict(first=slice(0, third), last=slice(-third, None))
            out.setdefault(name, {})[group] = {
                f'{key}_{part}': float(np.nanmean(s[key][sl]))
                for part, sl in parts.items() for key in ('mean', 'negative')}
    return out


def plot(records: Dict[str, dict], groups: Sequence[str], out: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.6), squeeze=False)
    for ax, group in zip(axes[0], groups):
        for name, record in records.items():
            s = series(record, group)
            if np.all(np.isnan(s['mean'])):
                continue
            line, = ax.plot(s['iters'], s['mean'], label=name)
            ax.fill_between(s['iters'], s['min'], s['max'], color=line.get_color(), alpha=0.12)
        ax.axhline(0.0, color='k', lw=0.6)
        ax.set_title(group)
        ax.set_xlabel('iteration')
        ax.set_ylim(-1, 1)
    axes[0][0].set_ylabel('cos(g_a, g_b): mean over task pairs (band: min..max)')
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('runs', nargs='+', help='work dirs (or gradient_conflict.json files)')
    parser.add_argument('--names', nargs='+', help='one label per run (default: the paths)')
    parser.add_argument('--groups', nargs='+', choices=GROUPS,
                        help='panels (default: every group a run recorded)')
    parser.add_argument('--out', default='gradient_conflict.png', help='the figure (PNG)')
    parser.add_argument('--summary', help='also write the summary as JSON')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, dict]]:
    args = parse_args(argv)
    names = args.names or args.runs
    if len(names) != len(args.runs):
        raise SystemExit(f'--names: {len(names)} labels for {len(args.runs)} runs')
    records = {name: load_record(path) for name, path in zip(names, args.runs)}
    present: List[str] = [g for g in GROUPS
                          if any(g in it for r in records.values() for it in r['iters'].values())]
    groups = args.groups or present
    missing = [g for g in groups if g not in present]
    if missing:
        raise SystemExit(f'--groups {missing}: recorded by no run (recorded: {present})')
    summary = summarise(records, groups)
    for name, per_group in summary.items():
        for group, s in per_group.items():
            print(f'{name:>16} {group:>15}: mean cos {s["mean_first"]:+.3f} (first third) -> '
                  f'{s["mean_last"]:+.3f} (last third); negative pairs '
                  f'{s["negative_first"]:.0%} -> {s["negative_last"]:.0%}')
    plot(records, groups, args.out)
    print(f'wrote {args.out}')
    if args.summary:
        with open(args.summary, 'w') as f:
            json.dump(summary, f, indent=2)
    return summary


if __name__ == '__main__':
    main()
