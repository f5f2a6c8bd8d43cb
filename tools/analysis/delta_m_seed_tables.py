"""The seed tables of ``tools/analysis/delta_m.py --seeds``: runs grouped into configurations,
mean ± std per configuration, and the paired comparison of two configurations seed by seed
(statistics in :mod:`mmase.evaluation.delta_m_seeds`). A row is ``delta_m.py``'s ``Row``: its
``label``, ``values`` (task -> main metric), ``deltas`` (task -> Δ %, positive = better) and
``delta_m``."""
import os.path as osp
import sys
from typing import List, Optional, Sequence, Tuple

from prettytable import PrettyTable

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a clone
from mmase.evaluation.delta_m_seeds import (PairedComparison, paired_comparison,  # noqa: E402
                                            summarise_seeds)


def seed_groups(rows: Sequence, seeds: int,
                names: Optional[Sequence[str]]) -> List[Tuple[str, list]]:
    """Consecutive runs of ``seeds`` each, labelled by ``names`` (default: the first run)."""
    if seeds < 1 or len(rows) % seeds:
        raise ValueError(f'--seeds {seeds}: {len(rows)} runs do not form configurations of '
                         f'{seeds} seeds each (give one configuration\'s runs after the other\'s)')
    groups = [list(rows[i:i + seeds]) for i in range(0, len(rows), seeds)]
    if names is not None and len(names) != len(groups):
        raise ValueError(f'--names: {len(names)} names for {len(groups)} configurations of '
                         f'{seeds} seeds')
    return [(names[i] if names else group[0].label, group) for i, group in enumerate(groups)]


def seed_table(groups, headers: Sequence[str], tasks: Sequence[str],
               digits: int = 2) -> PrettyTable:
    """Per configuration: each task's main metric (column ``headers``) and Δm as mean ± std
    over its seeds."""
    table = PrettyTable(field_names=['configuration (seeds)'] + list(headers) + ['Δm (%)'])
    table.align['configuration (seeds)'] = 'l'
    for name, rows in groups:
        cells = []
        for t in tasks:
            s = summarise_seeds([r.values[t] for r in rows], f'{name}: {t}')
            cells.append(f'{s.mean:.{digits}f} ± {s.std:.{digits}f}')
        s = summarise_seeds([r.delta_m for r in rows], f'{name}: Δm')
        table.add_row([f'{name} ({len(rows)})'] + cells + [f'{s.mean:+.2f} ± {s.std:.2f}'])
    return table


def paired_table(base, other, tasks: Sequence[str]) -> Tuple[PrettyTable, PairedComparison]:
    """``other − base`` seed by seed on each task's Δ (%, positive = better) and on Δm."""
    table = PrettyTable(field_names=['Δ (other − base)', 'mean', 'std', 't', 'p', '95 % CI',
                                     'seeds for p < 0.05'])
    comparison = None
    for key in list(tasks) + ['Δm']:
        pick = (lambda r: r.delta_m) if key == 'Δm' else (lambda r, k=key: r.deltas[k])
        comparison = paired_comparison([pick(r) for r in base[1]], [pick(r) for r in other[1]],
                                       f'{other[0]} vs {base[0]}: {key}')
        c = comparison
        table.add_row([key if key == 'Δm' else f'Δ {key}', f'{c.mean_diff:+.2f}',
                       f'{c.std_diff:.2f}', f'{c.t:+.2f}', f'{c.p:.3f}',
                       f'[{c.ci95[0]:+.2f}, {c.ci95[1]:+.2f}]',
                       '>1000' if c.seeds_needed is None else str(c.seeds_needed)])
    return table, comparison
