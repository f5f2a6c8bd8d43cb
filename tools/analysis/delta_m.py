"""Compare multi-task runs: one table of each task's main metric and Δm against a single-task
reference, in the column order of ASE's Table 1 (Seg, Norm, H.Parts, Sal, Edge), printed and
optionally written as Markdown and CSV.

Each run is a JSON file holding the flat metric dict of a val/test run
(``{"semseg/mIoU": 63.2, ...}``, as ``MultiTaskMetric`` returns it and tools/train.py /
tools/test.py save it, e.g. ``metrics_test.json``; keys may carry a prefix such as
``test/semseg/mIoU``) or a work dir, in which the newest ``*.json`` (searched recursively) holding
such keys is used.

The reference is either ``--reference FILE``, a config file defining ``stl_reference`` (those of
``configs/_base_/stl_reference/``, e.g. ASE's published ResNet-18 STL row with the metrics it is
in), or ``--stl``: ``task=PATH`` (a single-task run, file or work dir) or ``task=NUMBER`` (a
published value) per task. Δm averages over the reference's tasks; every run must report them.
Each task's main metric is the one the reference names, else ``--main-metrics`` (e.g.
``edge=loss`` for ASE's ablations, lower is better), else ``MAIN_METRICS``.

Examples::

    python tools/analysis/delta_m.py work_dirs/ase_vit-b16_16-3-1-4_40e work_dirs/mtl-vit_40e \
        --reference configs/_base_/stl_reference/pascal_mt_resnet18_ase.py \
        --md work_dirs/table1.md --csv work_dirs/table1.csv

    python tools/analysis/delta_m.py work_dirs/ase_vit-s16 work_dirs/mtl_baseline \
        --stl semseg=work_dirs/stl_semseg human_parts=work_dirs/stl_parts sal=work_dirs/stl_sal \
              normals=work_dirs/stl_normals edge=72.7 --main-metrics sal=mIoU

Seeds: ``--seeds N`` reads the runs as configurations of ``N`` seeds each (one configuration's
runs after the other's, seeds in the same order), prints each metric and Δm as mean ± std (sample
std) per configuration, and compares every configuration with the first seed by seed (paired
t-test on each task's Δ and on Δm; ``mmase.evaluation.delta_m_seeds``)::

    python tools/analysis/delta_m.py work_dirs/lora-moe_s{0,1,2} work_dirs/ase_s{0,1,2} --seeds 3 \
        --names LoRA-MoE ASE --reference configs/_base_/stl_reference/toy_pascal_mt.py
"""
import argparse
import csv
import glob
import json
import os
import os.path as osp
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from mmengine.config import Config
from prettytable import PrettyTable

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a clone
from mmase.evaluation import (MAIN_METRICS, TABLE_TASK_ORDER, main_metric_key,  # noqa: E402
                              metric_lower_is_better, parse_stl_reference, per_task_delta_m,
                              resolve_main_metrics)
from mmase.evaluation.delta_m_seeds import (PairedComparison, paired_comparison,  # noqa: E402
                                            summarise_seeds)


def _is_metric_dict(data) -> bool:
    """Whether ``data`` is a saved metric dict (has a ``<task>/...`` or ``multitask/...`` key)."""
    if not isinstance(data, dict):
        return False
    prefixes = tuple(f'{task}/' for task in MAIN_METRICS) + ('multitask/', )
    return any(any(part.startswith(prefixes) for part in _suffixes(key)) for key in data)


def _suffixes(key: str) -> List[str]:
    """``'test/semseg/mIoU'`` -> ``['test/semseg/mIoU', 'semseg/mIoU', 'mIoU']``."""
    parts = key.split('/')
    return ['/'.join(parts[i:]) for i in range(len(parts))]


def _load_json(path: str):
    with open(path) as f:
        return json.load(f)


def find_metrics_file(path: str) -> str:
    """Return ``path`` if it is a file, else the newest metric JSON under the directory ``path``."""
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise FileNotFoundError(f'no such file or work dir: {path!r}')
    candidates = []
    for name in glob.glob(osp.join(path, '**', '*.json'), recursive=True):
        try:
            data = _load_json(name)
        except (OSError, ValueError):
            continue  # e.g. mmengine's JSON-lines scalar logs
        if _is_metric_dict(data):
            candidates.append(name)
    if not candidates:
        raise FileNotFoundError(f'{path!r}: no *.json holding a metric dict (keys like '
                                f'"semseg/mIoU" or "multitask/delta_m") under this directory')
    return max(candidates, key=os.path.getmtime)


def load_metrics(path: str) -> Tuple[str, Dict[str, float]]:
    """Load a run's metric dict; returns ``(json_path, metrics)``."""
    json_path = find_metrics_file(path)
    try:
        data = _load_json(json_path)
    except ValueError as error:
        raise ValueError(f'{json_path}: not a JSON file ({error})') from None
    if not _is_metric_dict(data):
        raise ValueError(f'{json_path}: expected a JSON object of metrics with keys like '
                         f'"semseg/mIoU", got {type(data).__name__} with keys '
                         f'{list(data)[:5] if isinstance(data, dict) else "-"}')
    return json_path, data


def lookup(metrics: Dict[str, float], key: str, source: str) -> float:
    """Value of ``key`` in ``metrics``, also found under a prefix (``test/<key>``)."""
    if key in metrics:
        value = metrics[key]
    else:
        matches = {k: v for k, v in metrics.items() if k.endswith('/' + key)}
        if not matches:
            raise KeyError(f'{source}: no {key!r} in its metrics (keys: {sorted(metrics)})')
        if len(set(matches.values())) > 1:
            raise ValueError(f'{source}: several different values for {key!r}: {matches}')
        value = next(iter(matches.values()))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f'{source}: {key!r} is not a number: {value!r}')
    return float(value)


def tasks_in(metrics: Dict[str, float]) -> List[str]:
    """Tasks whose main metric appears in ``metrics``."""
    return [task for task in MAIN_METRICS
            if any(main_metric_key(task) in _suffixes(key) for key in metrics)]


def parse_stl(items: Sequence[str],
              main_metrics: Optional[Dict[str, str]] = None) -> Dict[str, float]:
    """Turn ``['semseg=path', 'edge=72.7']`` into task -> single-task main-metric value (the
    metric of ``main_metrics[task]``, else ``MAIN_METRICS[task]``)."""
    main_metrics = main_metrics or {}
    reference = {}
    for item in items:
        task, sep, source = item.partition('=')
        if not sep or not task or not source:
            raise ValueError(f'--stl: expected task=PATH or task=NUMBER, got {item!r}')
        key = main_metric_key(task, main_metrics.get(task))
        if task in reference:
            raise ValueError(f'--stl: task {task!r} given twice')
        if not osp.exists(source):
            try:
                reference[task] = float(source)
                continue
            except ValueError:
                raise FileNotFoundError(f'--stl {item}: {source!r} is neither a file, a work dir '
                                        f'nor a number') from None
        json_path, metrics = load_metrics(source)
        reference[task] = lookup(metrics, key, json_path)
    return reference


def parse_pairs(items: Optional[Sequence[str]], option: str) -> Dict[str, str]:
    """``['edge=loss']`` -> ``{'edge': 'loss'}``."""
    pairs = {}
    for item in items or ():
        key, sep, value = item.partition('=')
        if not sep or not key or not value:
            raise ValueError(f'{option}: expected task=VALUE, got {item!r}')
        pairs[key] = value
    return pairs


class Reference(NamedTuple):
    """The reference of a comparison: task -> value, task -> main metric, and its name."""
    values: Dict[str, float]
    metrics: Dict[str, str]
    name: str


def load_reference(path: Optional[str], stl: Optional[Sequence[str]],
                   main_metrics: Dict[str, str]) -> Reference:
    """The reference from ``--reference FILE`` (a config defining ``stl_reference``) or ``--stl``,
    with each task's main metric resolved (``--main-metrics`` must agree with the reference)."""
    if (path is None) == (not stl):
        raise ValueError('give exactly one of --reference FILE and --stl TASK=PATH|NUMBER ...')
    if path is not None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'--reference: no such file {path!r}')
        cfg = Config.fromfile(path)
        if cfg.get('stl_reference') is None:
            raise ValueError(f'--reference {path}: stl_reference is not set in this file (it '
                             f'holds no numbers yet; see its comments)')
        parsed = parse_stl_reference(cfg.stl_reference, field=f'{path}: stl_reference')
        metrics = resolve_main_metrics(list(parsed.values), main_metrics, parsed.metrics,
                                       field='--main-metrics',
                                       defaults_field=f'{path}: stl_reference.metrics')
        return Reference(parsed.values, metrics, parsed.source or osp.basename(path))
    metrics = resolve_main_metrics([i.partition('=')[0] for i in stl if '=' in i and
                                    i.partition('=')[0] in MAIN_METRICS],
                                   main_metrics, field='--main-metrics')
    return Reference(parse_stl(stl, metrics), metrics, 'single-task reference')


def column_order(tasks: Sequence[str], order: Optional[Sequence[str]] = None) -> List[str]:
    """Tasks in ``order`` (default: ASE's Table 1, ``TABLE_TASK_ORDER``), then any others in
    their own order; a task of ``order`` that the reference does not hold is an error."""
    if order:
        unknown = [t for t in order if t not in tasks]
        if unknown:
            raise ValueError(f'--order names {unknown}, which the reference does not hold '
                             f'(tasks: {list(tasks)})')
    else:
        order = [t for t in TABLE_TASK_ORDER if t in tasks]
    return list(order) + [t for t in tasks if t not in order]


class Row(NamedTuple):
    """One run of the table: its label, metric file, task -> value, task -> Δ (%), Δm (%)."""
    label: str
    source: str
    values: Dict[str, float]
    deltas: Dict[str, float]
    delta_m: float


def compare(runs: Sequence[str], reference: Reference,
            labels: Optional[Sequence[str]] = None) -> List[Row]:
    """Each run's main metrics, their Δ against ``reference`` and Δm."""
    if labels is not None and len(labels) != len(runs):
        raise ValueError(f'--names: {len(labels)} names for {len(runs)} runs')
    directions = {task: metric_lower_is_better(task, metric, '--main-metrics')
                  for task, metric in reference.metrics.items()}
    rows = []
    for index, run in enumerate(runs):
        json_path, metrics = load_metrics(run)
        values = {task: lookup(metrics, main_metric_key(task, reference.metrics[task]), json_path)
                  for task in reference.values}
        deltas = per_task_delta_m(values, reference.values, directions)
        rows.append(Row(labels[index] if labels else run, json_path, values, deltas,
                        sum(deltas.values()) / len(deltas)))
    return rows


def _header(task: str, reference: Reference) -> str:
    arrow = '↓' if metric_lower_is_better(task, reference.metrics[task]) else '↑'
    return f'{main_metric_key(task, reference.metrics[task])} {arrow}'


def build_table(rows: Sequence[Row], reference: Reference, tasks: Sequence[str],
                digits: int = 2) -> PrettyTable:
    """Terminal table: the reference row and, per run, each task's main metric (its Δ) and Δm."""
    table = PrettyTable(field_names=['run'] + [_header(t, reference) for t in tasks] + ['Δm (%)'])
    table.align['run'] = 'l'
    table.add_row([reference.name] + [f'{reference.values[t]:.{digits}f}' for t in tasks]
                  + ['0.00'])
    for row in rows:
        cells = [f'{row.values[t]:.{digits}f} ({row.deltas[t]:+.2f})' for t in tasks]
        table.add_row([row.label] + cells + [f'{row.delta_m:+.2f}'])
    return table


def to_markdown(rows: Sequence[Row], reference: Reference, tasks: Sequence[str],
                digits: int = 2) -> str:
    """The table in Markdown, paper style: values only, Δm last, the reference first."""
    lines = ['| run | ' + ' | '.join(_header(t, reference) for t in tasks) + ' | Δm (%) |',
             '| --- |' + ' ---: |' * (len(tasks) + 1),
             f'| {reference.name} | '
             + ' | '.join(f'{reference.values[t]:.{digits}f}' for t in tasks) + ' | 0.00 |']
    for row in rows:
        lines.append(f'| {row.label} | ' + ' | '.join(f'{row.values[t]:.{digits}f}' for t in tasks)
                     + f' | {row.delta_m:+.2f} |')
    return '\n'.join(lines) + '\n'


def write_csv(path: str, rows: Sequence[Row], reference: Reference, tasks: Sequence[str]) -> None:
    """One line per run (the reference first): label, each ``<task>/<metric>``, each
    ``delta_<task>`` (%), ``delta_m`` (%), the metric file; full precision."""
    keys = [main_metric_key(t, reference.metrics[t]) for t in tasks]
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['run'] + keys + [f'delta_{t}' for t in tasks] + ['delta_m', 'source'])
        writer.writerow([reference.name] + [reference.values[t] for t in tasks] + [0.0] * len(tasks)
                        + [0.0, ''])
        for row in rows:
            writer.writerow([row.label] + [row.values[t] for t in tasks]
                            + [row.deltas[t] for t in tasks] + [row.delta_m, row.source])


def seed_groups(rows: Sequence[Row], seeds: int,
                names: Optional[Sequence[str]]) -> List[Tuple[str, List[Row]]]:
    """Consecutive runs of ``seeds`` each, labelled by ``names`` (default: the first run)."""
    if seeds < 1 or len(rows) % seeds:
        raise ValueError(f'--seeds {seeds}: {len(rows)} runs do not form configurations of '
                         f'{seeds} seeds each (give one configuration\'s runs after the other\'s)')
    groups = [list(rows[i:i + seeds]) for i in range(0, len(rows), seeds)]
    if names is not None and len(names) != len(groups):
        raise ValueError(f'--names: {len(names)} names for {len(groups)} configurations of '
                         f'{seeds} seeds')
    return [(names[i] if names else group[0].label, group) for i, group in enumerate(groups)]


def seed_table(groups, reference: Reference, tasks: Sequence[str], digits: int = 2) -> PrettyTable:
    """Per configuration: each task's main metric and Δm as mean ± std over its seeds."""
    table = PrettyTable(field_names=['configuration (seeds)']
                        + [_header(t, reference) for t in tasks] + ['Δm (%)'])
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


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='One table of multi-task runs (main metrics in ASE Table 1 order, Δm against '
        'a single-task reference) from their saved metrics. Give the runs first.')
    parser.add_argument('runs', nargs='+', help='multi-task runs: metric JSON files or work dirs')
    parser.add_argument('--reference', metavar='FILE',
                        help='config file defining stl_reference, e.g. '
                        'configs/_base_/stl_reference/pascal_mt_resnet18_ase.py')
    parser.add_argument('--stl', nargs='+', metavar='TASK=PATH|NUMBER',
                        help='single-task reference per task: a run (JSON file or work dir) or a '
                        'value')
    parser.add_argument('--main-metrics', nargs='+', metavar='TASK=METRIC',
                        help='main metric per task, e.g. sal=mIoU edge=loss')
    parser.add_argument('--order', nargs='+', metavar='TASK',
                        help='column order (default: ASE Table 1: semseg normals human_parts sal '
                        'edge, then depth)')
    parser.add_argument('--names', nargs='+', help='row labels of the runs (default: as given)')
    parser.add_argument('--md', metavar='PATH', help='also write the table as Markdown')
    parser.add_argument('--csv', metavar='PATH', help='also write the table as CSV')
    parser.add_argument('--digits', type=int, default=2, help='decimals of the metric values')
    parser.add_argument('--seeds', type=int, metavar='N',
                        help='the runs are configurations of N seeds each: mean ± std per '
                        'configuration, paired comparison with the first (--names: one per '
                        'configuration)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> List[Row]:
    args = parse_args(argv)
    reference = load_reference(args.reference, args.stl,
                               parse_pairs(args.main_metrics, '--main-metrics'))
    tasks = column_order(list(reference.values), args.order)
    rows = compare(args.runs, reference, None if args.seeds else args.names)
    print(build_table(rows, reference, tasks, args.digits))
    if args.seeds:
        groups = seed_groups(rows, args.seeds, args.names)
        print(seed_table(groups, reference, tasks, args.digits))
        for other in groups[1:]:
            table, _ = paired_table(groups[0], other, tasks)
            print(f'{other[0]} − {groups[0][0]}, paired by seed (run order):')
            print(table)
    print('Δm = mean over tasks of (−1)^l (M − M_STL) / M_STL × 100 (l = 1 where lower is better); '
          f'tasks: {", ".join(tasks)}. In brackets: each task\'s relative change (%).')
    for run in args.runs:
        extra = [t for t in tasks_in(load_metrics(run)[1]) if t not in reference.values]
        if extra:
            print(f'note: {run} also reports {extra}, left out of Δm (no reference)')
    if args.md:
        with open(args.md, 'w') as f:
            f.write(to_markdown(rows, reference, tasks, args.digits))
        print(f'wrote {args.md}')
    if args.csv:
        write_csv(args.csv, rows, reference, tasks)
        print(f'wrote {args.csv}')
    return rows


if __name__ == '__main__':
    try:
        main()
    except (ValueError, KeyError, FileNotFoundError) as error:
        sys.exit(f'delta_m.py: error: {error}')
