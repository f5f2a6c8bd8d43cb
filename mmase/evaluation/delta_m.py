"""Multi-task performance Δm: the mean relative change of each task's main metric against
single-task models.

    Δm = (1/T) Σ_i (−1)^{l_i} (M_i − M_STL,i) / M_STL,i × 100

with ``l_i = 1`` where a lower value of task ``i``'s main metric is better (Maninis et al.,
"Attentive Single-Tasking of Multiple Tasks", CVPR 2019, §5; Vandenhende et al., TPAMI 2021). A
positive Δm means the multi-task model beats the single-task models on average.
"""
import math
from numbers import Real
from typing import Dict, Mapping, Optional

from mmase.tasks import TASK_SPECS

#: The main metric of each task, the one Δm uses (key suffix in the metric dict, ``<task>/<name>``).
MAIN_METRICS: Dict[str, str] = dict(
    semseg='mIoU',
    human_parts='mIoU',
    sal='maxF',
    normals='mErr',
    edge='odsF',
    depth='rmse',
)


def main_metric_key(task: str) -> str:
    """Return the metric-dict key of ``task``'s main metric, e.g. ``'semseg/mIoU'``."""
    if task not in MAIN_METRICS:
        raise ValueError(f'no main metric is defined for task {task!r}; known tasks are '
                         f'{sorted(MAIN_METRICS)}')
    return f'{task}/{MAIN_METRICS[task]}'


def _as_number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f'{where}: expected a finite number, got {value!r}')
    return float(value)


def per_task_delta_m(results: Mapping[str, float],
                     stl: Mapping[str, float],
                     lower_is_better: Optional[Mapping[str, bool]] = None) -> Dict[str, float]:
    """Relative change of each task's main metric against its single-task reference, in percent.

    Args:
        results (Mapping[str, float]): Task name -> main-metric value of the evaluated (multi-task)
            model. The tasks of this mapping are the ones Δm averages over.
        stl (Mapping[str, float]): Task name -> main-metric value of the single-task reference, in
            the same units as ``results``. Must hold every task of ``results`` (extra tasks are
            ignored).
        lower_is_better (Mapping[str, bool], optional): Direction of each task's metric. Tasks
            missing here take ``TASK_SPECS[task].lower_is_better``. Defaults to None (all from
            ``TASK_SPECS``).

    Returns:
        Dict[str, float]: Task name -> ``(−1)^{l} (M − M_STL) / M_STL × 100``, in the order of
            ``results``.
    """
    if not results:
        raise ValueError('delta_m: results is empty; give at least one task')
    lower_is_better = dict(lower_is_better or {})
    missing = [task for task in results if task not in stl]
    if missing:
        raise ValueError(f'delta_m: no single-task reference for task(s) {missing}; the reference '
                         f'holds {sorted(stl)}')
    deltas = {}
    for task, value in results.items():
        value = _as_number(value, f'results[{task!r}]')
        reference = _as_number(stl[task], f'stl[{task!r}]')
        if reference == 0:
            raise ValueError(f'stl[{task!r}] is 0: Δm divides by the single-task value')
        if task in lower_is_better:
            lower = bool(lower_is_better[task])
        elif task in TASK_SPECS:
            lower = TASK_SPECS[task].lower_is_better
        else:
            raise ValueError(f'delta_m: direction of task {task!r} unknown: it is not in '
                             f'TASK_SPECS; give lower_is_better={{{task!r}: True/False}}')
        sign = -1.0 if lower else 1.0
        deltas[task] = sign * (value - reference) / reference * 100.0
    return deltas


def delta_m(results: Mapping[str, float],
            stl: Mapping[str, float],
            lower_is_better: Optional[Mapping[str, bool]] = None) -> float:
    """Δm in percent: the mean of :func:`per_task_delta_m` over the tasks of ``results``.

    Args:
        results (Mapping[str, float]): Task name -> main-metric value of the evaluated model.
        stl (Mapping[str, float]): Task name -> main-metric value of the single-task reference.
        lower_is_better (Mapping[str, bool], optional): Direction per task; defaults to
            ``TASK_SPECS``.

    Returns:
        float: Δm in percent (positive = better than single-task on average).

    Example:
        The ASTMT README (ResNet-101, PASCAL-Context) lists an average drop of 6.81 % for
        "MTL w/o ASTMT"::

            >>> stl = dict(edge=72.7, semseg=68.30, human_parts=60.70, normals=14.61, sal=65.40)
            >>> mtl = dict(edge=69.2, semseg=63.20, human_parts=55.10, normals=16.04, sal=63.60)
            >>> round(delta_m(mtl, stl), 2)
            -6.81
    """
    deltas = per_task_delta_m(results, stl, lower_is_better)
    return sum(deltas.values()) / len(deltas)
