"""The tables the multi-task metric logs: every metric with its image count, the main metrics in
ASE's Table 1 column order with Δ and Δm, and a task's per-class IoU / Acc (as mmseg's
``IoUMetric``)."""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.logging import print_log
from prettytable import PrettyTable

from ..delta_m import TABLE_TASK_ORDER, metric_lower_is_better
from .segmentation_meter import class_table


def log_class_table(task: str, scores: Dict[str, np.ndarray],
                    names: Sequence[str]) -> Dict[str, dict]:
    """Log ``task``'s per-class table; returns ``{class: dict(IoU, Acc)}`` (percent, None where
    undefined). ``names``: the dataset's class names (``class i`` when they do not match)."""
    num = len(scores['IoU'])
    names = list(names or [])
    if len(names) != num:
        names = [f'class {i}' for i in range(num)]
    print_log(f'per class results ({task}):\n{class_table(scores, names).get_string()}',
              logger='current')
    return {name: dict(IoU=None if np.isnan(iou) else float(iou),
                       Acc=None if np.isnan(acc) else float(acc))
            for name, iou, acc in zip(names, scores['IoU'], scores['Acc'])}


def log_main_metrics(tasks: Sequence[str], main_metrics: Dict[str, str],
                     metrics: Dict[str, float], deltas: Optional[Dict[str, float]],
                     stl_reference: Optional[Dict[str, float]]) -> None:
    """Log the main metrics in ASE's Table 1 column order, with Δ and Δm when known."""
    order = [t for t in TABLE_TASK_ORDER if t in tasks] + \
        [t for t in tasks if t not in TABLE_TASK_ORDER]
    keys = {task: f'{task}/{main_metrics[task]}' for task in order}
    arrows = {task: '↓' if metric_lower_is_better(task, main_metrics[task]) else '↑'
              for task in order}
    table = PrettyTable(field_names=[''] + [f'{keys[t]} {arrows[t]}' for t in order]
                        + ['Δm (%)'])
    table.add_row(['value'] + [f'{metrics[keys[t]]:.2f}' for t in order]
                  + ['-' if deltas is None else f"{metrics['multitask/delta_m']:+.2f}"])
    if deltas is not None:
        table.add_row(['STL'] + [f'{stl_reference[t]:.2f}' for t in order] + ['0.00'])
        table.add_row(['Δ (%)'] + [f'{deltas[t]:+.2f}' for t in order] + [''])
    print_log(f'MultiTaskMetric main metrics:\n{table.get_string()}', logger='current')


def log_metric_table(protocol: str, tasks: Sequence[str], metrics: Dict[str, float],
                     results: List[Dict[str, Any]]) -> None:
    """Log every metric with the number of images it counts."""
    table = PrettyTable(field_names=['metric', 'value', 'images'])
    table.align['metric'] = 'l'
    table.align['value'] = 'r'
    for key, value in metrics.items():
        task = key.split('/')[0]
        counted = sum(result[task] is not None for result in results) if task in tasks \
            else len(results)
        table.add_row([key, f'{value:.4f}', counted])
    print_log(f'MultiTaskMetric (protocol {protocol!r}):\n{table.get_string()}',
              logger='current')
