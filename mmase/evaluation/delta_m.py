"""Multi-task performance Δm: the mean relative change of each task's main metric against
single-task models.

    Δm = (1/T) Σ_i (−1)^{l_i} (M_i − M_STL,i) / M_STL,i × 100

with ``l_i = 1`` where a lower value of task ``i``'s main metric is better (Maninis et al.,
"Attentive Single-Tasking of Multiple Tasks", CVPR 2019, §5; Vandenhende et al., TPAMI 2021). A
positive Δm means the multi-task model beats the single-task models on average.

Which metric is a task's *main* one is a choice of the paper being followed: ASE (Li et al.,
2025, arXiv 2510.00570) scores saliency by mIoU and, in its ablations, edges by the balanced BCE
loss (lower is better). :func:`resolve_main_metrics` turns such a choice into one metric name per
task, :func:`metric_lower_is_better` gives its direction, and :func:`parse_stl_reference` reads a
single-task reference (plain numbers, or numbers with the metrics they are and their source, as
the files of ``configs/_base_/stl_reference/`` write them).
"""
import math
from collections.abc import Mapping as MappingABC
from numbers import Real
from typing import Dict, Iterable, Iterator, Mapping, NamedTuple, Optional, Sequence

from mmase.tasks import TASK_SPECS


class _MainMetrics(MappingABC):
    """Live read-only view task -> the ``main_metric`` of its declaration."""

    def __getitem__(self, task: str) -> str:
        return TASK_SPECS[task].main_metric

    def __iter__(self) -> Iterator[str]:
        return iter(TASK_SPECS)

    def __len__(self) -> int:
        return len(TASK_SPECS)


#: The default main metric of each declared task (its declaration's ``main_metric``), the one
#: Δm uses unless a config chooses another (key suffix in the metric dict, ``<task>/<name>``):
#: semseg / human_parts mIoU, sal maxF, normals mErr, edge odsF, depth rmse.
MAIN_METRICS: Mapping[str, str] = _MainMetrics()

#: Metric names (as ``MultiTaskMetric`` returns them after ``<task>/``) where lower is better.
LOWER_IS_BETTER_METRICS = frozenset({'mErr', 'median', 'rmse', 'abs_rel', 'loss', 'mae'})
#: Metric names where higher is better.
HIGHER_IS_BETTER_METRICS = frozenset({'mIoU', 'mIoU_pooled', 'maxF', 'maxF_atrc', 'odsF',
                                      'within11.25', 'within22.5', 'within30', 'delta1'})

#: Column order of the comparison tables: ASE's Table 1 (Seg, Norm, H.Parts, Sal, Edge), then
#: NYUD's depth.
TABLE_TASK_ORDER = ('semseg', 'normals', 'human_parts', 'sal', 'edge', 'depth')

#: Keys of a single-task reference dict that are not tasks (see :func:`parse_stl_reference`).
REFERENCE_META_KEYS = ('source', 'metrics')


def main_metric_key(task: str, metric: Optional[str] = None) -> str:
    """Return the metric-dict key of ``task``'s main metric, e.g. ``'semseg/mIoU'``.

    Args:
        task (str): Task name.
        metric (str, optional): The chosen main metric; defaults to ``MAIN_METRICS[task]``.
    """
    if metric is not None:
        return f'{task}/{metric}'
    if task not in MAIN_METRICS:
        raise ValueError(f'no main metric is defined for task {task!r}; known tasks are '
                         f'{sorted(MAIN_METRICS)}')
    return f'{task}/{MAIN_METRICS[task]}'


def metric_lower_is_better(task: str, metric: str, field: str = 'main_metrics') -> bool:
    """Direction of ``task``'s metric ``metric`` (True: lower is better, e.g. ``mErr``,
    ``loss``); ``field`` names the config field in the error for an unknown metric. A metric
    outside the known names takes the direction a task's declaration gives its main metric."""
    spec = TASK_SPECS.get(task)
    if spec is not None and metric == spec.main_metric:
        return spec.lower_is_better
    if metric in LOWER_IS_BETTER_METRICS:
        return True
    if metric in HIGHER_IS_BETTER_METRICS:
        return False
    raise ValueError(f'{field}[{task!r}]={metric!r}: direction unknown; metrics with a '
                     f'direction are {sorted(LOWER_IS_BETTER_METRICS | HIGHER_IS_BETTER_METRICS)}')


def resolve_main_metrics(tasks: Sequence[str],
                         main_metrics: Optional[Mapping[str, str]] = None,
                         defaults: Optional[Mapping[str, str]] = None,
                         field: str = 'main_metrics',
                         defaults_field: str = 'stl_reference.metrics') -> Dict[str, str]:
    """One main metric per task: ``main_metrics[task]``, else ``defaults[task]`` (e.g. the
    metrics a single-task reference names), else ``MAIN_METRICS[task]``.

    Args:
        tasks (Sequence[str]): The evaluated tasks.
        main_metrics (Mapping[str, str], optional): The config's choice; may hold tasks outside
            ``tasks`` (ignored) but only known ones.
        defaults (Mapping[str, str], optional): Metrics used where ``main_metrics`` is silent;
            where both name a task they must agree.
        field (str): Config field of ``main_metrics`` (for messages).
        defaults_field (str): Config field of ``defaults`` (for messages).

    Returns:
        Dict[str, str]: Task -> metric name, in the order of ``tasks``.
    """
    chosen = {}
    for name, mapping in ((field, main_metrics), (defaults_field, defaults)):
        if mapping is None:
            continue
        if not isinstance(mapping, MappingABC):
            raise TypeError(f'{name} must be a dict task -> metric name, got '
                            f'{type(mapping).__name__}')
        for task, metric in mapping.items():
            if task not in TASK_SPECS:
                raise ValueError(f'{name}: unknown task {task!r}; known tasks are '
                                 f'{sorted(TASK_SPECS)}')
            if not isinstance(metric, str) or not metric:
                raise ValueError(f'{name}[{task!r}] must be a metric name (str), got '
                                 f'{metric!r}')
    main_metrics = dict(main_metrics or {})
    defaults = dict(defaults or {})
    for task in tasks:
        if task in main_metrics and task in defaults and main_metrics[task] != defaults[task]:
            raise ValueError(f'{field}[{task!r}]={main_metrics[task]!r} but {defaults_field}'
                             f'[{task!r}]={defaults[task]!r}: the single-task reference is in '
                             f'another metric; choose {defaults[task]!r} or another reference')
        chosen[task] = main_metrics.get(task, defaults.get(task))
        if chosen[task] is None:
            chosen[task] = main_metric_key(task).split('/', 1)[1]
    return chosen


class STLReference(NamedTuple):
    """A parsed single-task reference: ``values`` task -> number; ``metrics`` task -> the
    metric each value is (empty when the reference does not say); ``source`` where the numbers
    come from (None when not given)."""
    values: Dict[str, float]
    metrics: Dict[str, str]
    source: Optional[str]


def parse_stl_reference(reference: Mapping,
                        tasks: Optional[Iterable[str]] = None,
                        field: str = 'stl_reference') -> STLReference:
    """Check and split a single-task reference dict.

    Two forms are accepted: plain ``dict(semseg=60.1, ...)`` (each value in the units of the
    task's main metric), or the same with the meta keys ``source`` (str: paper, table, file) and
    ``metrics`` (task -> the metric each value is), as ``configs/_base_/stl_reference/`` files
    write them::

        dict(source='ASE Table 1, STL ResNet-18 (configs/_base_/stl_reference/...)',
             metrics=dict(semseg='mIoU', sal='mIoU', ...), semseg=60.1, sal=63.2, ...)

    Args:
        reference (Mapping): The reference.
        tasks (Iterable[str], optional): Tasks it must hold (more are allowed).
        field (str): Config field of the reference (for messages).

    Returns:
        STLReference: ``(values, metrics, source)``; ``values`` holds every task of the
        reference (only ``tasks`` when given).

    Raises:
        ValueError: A task is missing (the message names ``field`` and ``source``), a value is
            not a finite non-zero number, or ``metrics`` names a task without a value.
    """
    if not isinstance(reference, MappingABC):
        raise TypeError(f'{field} must be a dict task -> value, got {type(reference).__name__}')
    source = reference.get('source')
    if source is not None and not isinstance(source, str):
        raise ValueError(f'{field}.source must be a str (where the numbers come from), got '
                         f'{source!r}')
    where = f'{field} ({source})' if source else field
    metrics = reference.get('metrics') or {}
    if not isinstance(metrics, MappingABC):
        raise ValueError(f'{where}: metrics must be a dict task -> metric name, got '
                         f'{metrics!r}')
    values = {}
    for task, value in reference.items():
        if task in REFERENCE_META_KEYS:
            continue
        if task not in TASK_SPECS:
            raise ValueError(f'{where}: unknown task {task!r}; known tasks are '
                             f'{sorted(TASK_SPECS)} (and the keys {REFERENCE_META_KEYS})')
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) \
                or value == 0:
            raise ValueError(f'{where}[{task!r}] must be a finite non-zero number, got '
                             f'{value!r}')
        values[task] = float(value)
    for task in metrics:
        if task not in values:
            raise ValueError(f'{where}: metrics names task {task!r}, which has no value')
    if tasks is not None:
        tasks = list(tasks)
        for task in tasks:
            if task not in values:
                metric = metrics.get(task) or MAIN_METRICS.get(task, '<main metric>')
                raise ValueError(f'{where} has no value for task {task!r}: give {field}[{task!r}]'
                                 f' = the single-task {task}/{metric}, use a reference that '
                                 f'covers the task, or stl_reference=None to skip Δm')
        values = {task: values[task] for task in tasks}
    return STLReference(values, {t: str(m) for t, m in metrics.items() if t in values}, source)


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
