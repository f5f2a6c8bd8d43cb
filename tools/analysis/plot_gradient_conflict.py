"""Plot the gradient conflict between tasks over training, one line per method.

Reads ``gradient_conflict.json`` (written by ``GradientConflictHook``) from each work dir and
draws one panel per parameter group (``lora``, ``sparse_experts``, ``shared_experts``, ``routers``,
``other``, ``all``): x the iteration, y the mean over task pairs of the cosine similarity of the
two tasks' gradients (a band from the lowest to the highest pair). It prints, per method and
group, the mean cosine and the fraction of negative (conflicting) pairs over the first and the
last third of the recorded iterations, and writes them to ``--summary`` as JSON.

Runs given the same ``--names`` label are seeds of one method: its line is the mean over the
seeds, its band the lowest to the highest seed, and the summary gives the mean ± std over seeds.

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


def pooled(records: Sequence[dict], group: str) -> Dict[str, np.ndarray]:
    """One method's series: that of its run, or for several runs (seeds) the mean over the
    seeds with ``min`` / ``max`` the lowest / highest seed's mean, and ``seeds`` ``(n, iters)``
    of each seed's mean and fraction of negative pairs."""
    runs = [series(r, group) for r in records]
    if len(runs) == 1:
        return dict(runs[0], seeds_mean=runs[0]['mean'][None],
                    seeds_negative=runs[0]['negative'][None])
    iters = runs[0]['iters']
    if any(len(r['iters']) != len(iters) or (r['iters'] != iters).any() for r in runs):
        raise ValueError(f'{group}: runs pooled under one name recorded different iterations')
    means = np.stack([r['mean'] for r in runs])
    return dict(iters=iters, mean=means.mean(0), min=means.min(0), max=means.max(0),
                negative=np.stack([r['negative'] for r in runs]).mean(0), seeds_mean=means,
                seeds_negative=np.stack([r['negative'] for r in runs]))


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


def summarise(records: Dict[str, List[dict]],
              groups: Sequence[str]) -> Dict[str, Dict[str, dict]]:
    """Per method and group: mean cosine and fraction of negative pairs over the first and last
    third of the recorded iterations (mean over seeds; ``*_std``: std over seeds, NaN for one),
    and ``runs``, the number of seeds."""
    out: Dict[str, Dict[str, dict]] = {}
    for name, runs in records.items():
        for group in groups:
            s = pooled(runs, group)
            if np.all(np.isnan(s['mean'])):
                continue
            third = max(1, len(s['iters']) // 3)
            parts = dict(first=slice(0, third), last=slice(-third, None))
            entry = dict(runs=len(runs))
            for part, sl in parts.items():
                for key in ('mean', 'negative'):
                    per_seed = np.nanmean(s[f'seeds_{key}'][:, sl], axis=1)
                    entry[f'{key}_{part}'] = float(per_seed.mean())
                    entry[f'{key}_{part}_std'] = (float(per_seed.std(ddof=1))
                                                  if len(per_seed) > 1 else math.nan)
            out.setdefault(name, {})[group] = entry
    return out


def plot(records: Dict[str, List[dict]], groups: Sequence[str], out: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.6), squeeze=False)
    colours = {name: f'C{i % 10}' for i, name in enumerate(records)}  # one colour per method
    low, high = -0.1, 0.1  # one y range for every panel, 0 always in view
    for ax, group in zip(axes[0], groups):
        for name, runs in records.items():
            s = pooled(runs, group)
            if np.all(np.isnan(s['mean'])):
                continue
            label = f'{name} ({len(runs)} seeds)' if len(runs) > 1 else name
            ax.plot(s['iters'], s['mean'], label=label, color=colours[name])
            ax.fill_between(s['iters'], s['min'], s['max'], color=colours[name], alpha=0.12)
            low, high = min(low, np.nanmin(s['min'])), max(high, np.nanmax(s['max']))
        ax.axhline(0.0, color='k', lw=0.6)
        ax.set_title(group)
        ax.set_xlabel('iteration')
    for ax in axes[0]:
        ax.set_ylim(max(-1.0, low - 0.05), min(1.0, high + 0.05))
    axes[0][0].set_ylabel('cos(g_a, g_b), mean over task pairs')
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_lines()
               if h.get_label()[0] != '_'}
    axes[0][-1].legend(handles.values(), handles.keys(), fontsize=8)
    pooled_runs = any(len(runs) > 1 for runs in records.values())
    fig.suptitle('gradient cosine between tasks on the shared parameters (band: lowest to '
                 f'highest {"seed" if pooled_runs else "pair"})', fontsize=10)
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
    records: Dict[str, List[dict]] = {}
    for name, path in zip(names, args.runs):
        records.setdefault(name, []).append(load_record(path))
    present: List[str] = [g for g in GROUPS if any(
        g in it for runs in records.values() for r in runs for it in r['iters'].values())]
    groups = args.groups or present
    missing = [g for g in groups if g not in present]
    if missing:
        raise SystemExit(f'--groups {missing}: recorded by no run (recorded: {present})')
    summary = summarise(records, groups)
    for name, per_group in summary.items():
        for group, s in per_group.items():
            pm = (lambda k: f' ± {s[k + "_std"]:.3f}') if s['runs'] > 1 else (lambda k: '')
            print(f'{name:>16} {group:>15}: mean cos {s["mean_first"]:+.3f}{pm("mean_first")} '
                  f'(first third) -> {s["mean_last"]:+.3f}{pm("mean_last")} (last third); '
                  f'negative pairs {s["negative_first"]:.0%} -> {s["negative_last"]:.0%}'
                  + (f' ({s["runs"]} seeds)' if s['runs'] > 1 else ''))
    plot(records, groups, args.out)
    print(f'wrote {args.out}')
    if args.summary:
        with open(args.summary, 'w') as f:
            json.dump(summary, f, indent=2)
    return summary


if __name__ == '__main__':
    main()
