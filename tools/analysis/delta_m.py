"""Print the Δm table of multi-task runs against single-task runs from their saved test metrics.

Each run is a JSON file holding the flat metric dict of a val/test run
(``{"semseg/mIoU": 63.2, ...}``, as ``MultiTaskMetric`` returns it and tools/train.py /
tools/test.py save it, e.g. ``metrics_test.json``; keys may carry a prefix such as
``test/semseg/mIoU``) or a work dir, in which the newest ``*.json`` (searched recursively) holding
such keys is used.

Example::

    python tools/analysis/delta_m.py work_dirs/ase_vit-s16 work_dirs/mtl_baseline \\
        --stl semseg=work_dirs/stl_semseg human_parts=work_dirs/stl_parts sal=work_dirs/stl_sal \\
              normals=work_dirs/stl_normals edge=72.7

``--stl`` takes ``task=PATH`` (a single-task run, file or work dir) or ``task=NUMBER`` (a published
value). Δm averages over the ``--stl`` tasks; every run must report them.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from prettytable import PrettyTable

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a clone
from mmase.evaluation import MAIN_METRICS, main_metric_key, per_task_delta_m  # noqa: E402


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


def parse_stl(items: Sequence[str]) -> Dict[str, float]:
    """Turn ``['semseg=path', 'edge=72.7']`` into task -> single-task main-metric value."""
    reference = {}
    for item in items:
        task, sep, source = item.partition('=')
        if not sep or not task or not source:
            raise ValueError(f'--stl: expected task=PATH or task=NUMBER, got {item!r}')
        key = main_metric_key(task)
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


def build_table(runs: Sequence[str], reference: Dict[str, float], digits: int = 2) -> PrettyTable:
    """Table with the reference row and, per run, each task's main metric (its Δ) and Δm."""
    tasks = list(reference)
    table = PrettyTable(field_names=['run'] + [main_metric_key(t) for t in tasks] + ['Δm (%)'])
    table.align['run'] = 'l'
    table.add_row(['single-task reference'] + [f'{reference[t]:.{digits}f}' for t in tasks]
                  + ['0.00'])
    for run in runs:
        json_path, metrics = load_metrics(run)
        values = {task: lookup(metrics, main_metric_key(task), json_path) for task in tasks}
        deltas = per_task_delta_m(values, reference)
        delta_m = sum(deltas.values()) / len(deltas)
        cells = [f'{values[t]:.{digits}f} ({deltas[t]:+.2f})' for t in tasks]
        table.add_row([run] + cells + [f'{delta_m:+.2f}'])
    return table


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Δm of multi-task runs against single-task references, from saved test '
        'metrics. Give the runs before --stl.')
    parser.add_argument('runs', nargs='+', help='multi-task runs: metric JSON files or work dirs')
    parser.add_argument('--stl', nargs='+', required=True, metavar='TASK=PATH|NUMBER',
                        help='single-task reference per task: a run (JSON file or work dir) or a '
                        'value')
    parser.add_argument('--digits', type=int, default=2, help='decimals of the metric values')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    reference = parse_stl(args.stl)
    print(build_table(args.runs, reference, args.digits))
    print('Δm = mean over tasks of (−1)^l (M − M_STL) / M_STL × 100 (l = 1 where lower is better); '
          f'tasks: {", ".join(reference)}. In brackets: each task\'s relative change (%).')
    for run in args.runs:
        extra = [t for t in tasks_in(load_metrics(run)[1]) if t not in reference]
        if extra:
            print(f'note: {run} also reports {extra}, left out of Δm (no --stl reference)')


if __name__ == '__main__':
    try:
        main()
    except (ValueError, KeyError, FileNotFoundError) as error:
        sys.exit(f'delta_m.py: error: {error}')
