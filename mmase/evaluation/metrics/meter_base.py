"""The meter base: :class:`TaskMeter`, the meter registry :data:`TASK_METERS`, the protocol names
and the input checks and reductions every meter shares.

A meter turns one sample's prediction and ground truth into a small *record* of counts (a dict of
numbers and small arrays, never whole maps) and reduces the records of the whole set into metrics.
Records are plain picklable data, so :class:`~mmase.evaluation.metrics.MultiTaskMetric` can keep one
per sample in ``self.results`` and mmengine can gather them from several processes.

The meter modules import this one (never :mod:`.task_metrics`, which builds meters and so imports
them): no import circle.
"""
from abc import ABCMeta, abstractmethod
from typing import Dict, Iterable, Mapping, Optional, Sequence

import numpy as np
from mmengine.registry import Registry

#: Per-task meters (classes of :class:`TaskMeter`), named by task declarations.
TASK_METERS = Registry('task meter', scope='mmase')

#: Names of the evaluation protocols.
PROTOCOLS = ('invpt', 'astmt', 'atrc')


def check_protocol(protocol: str, field: str = 'protocol') -> str:
    """Return ``protocol`` if it is a known protocol, else raise a ValueError naming ``field``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f'{field}={protocol!r} is not a known evaluation protocol; choose from '
                         f'{PROTOCOLS}')
    return protocol


def check_probabilities(pred: np.ndarray, name: str = 'prediction') -> None:
    """Raise a ValueError unless ``pred`` holds finite values in [0, 1]."""
    if pred.size and not (np.isfinite(pred).all() and pred.min() >= 0 and pred.max() <= 1):
        raise ValueError(f'{name} must be foreground probabilities in [0, 1] (got values in '
                         f'[{np.nanmin(pred)}, {np.nanmax(pred)}]); apply the sigmoid before '
                         f'evaluation')


def check_binary_labels(gt: np.ndarray, ignore_index: int) -> None:
    """Raise a ValueError unless ``gt`` holds only 0, 1 and ``ignore_index``."""
    bad = (gt != 0) & (gt != 1) & (gt != ignore_index)
    if bad.any():
        raise ValueError(f'binary ground truth must hold 0, 1 or {ignore_index}; found '
                         f'{np.unique(gt[bad]).tolist()[:10]}')


def sum_records(records: Iterable[Mapping[str, np.ndarray]],
                keys: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """Sum the arrays of several records key by key.

    Args:
        records (Iterable[Mapping]): Records with the same keys and shapes.
        keys (Sequence[str], optional): Keys to sum; defaults to the keys of the first record.

    Returns:
        Dict[str, np.ndarray]: Key -> element-wise sum (float64 or int64 arrays).
    """
    records = list(records)
    if not records:
        raise ValueError('sum_records: no records to sum')
    keys = list(records[0]) if keys is None else list(keys)
    return {key: np.sum([np.asarray(r[key]) for r in records], axis=0) for key in keys}


def safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise ``numerator / denominator`` with 0 where the denominator is 0 (float64)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(numerator, denominator).shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


class TaskMeter(metaclass=ABCMeta):
    """Accumulable meter of one dense task: :meth:`process` per sample, :meth:`compute` over the
    set.

    The output of :meth:`compute` holds the metrics :func:`task_metric_names` lists for the
    task and protocol (among them the default main metric ``mmase.evaluation.MAIN_METRICS[task]``).
    """

    @abstractmethod
    def process(self, pred: np.ndarray, gt: np.ndarray) -> Optional[Dict[str, np.ndarray]]:
        """Count one sample.

        Args:
            pred (np.ndarray): The prediction at the ground truth's resolution (shape per subclass).
            gt (np.ndarray): The ground truth.

        Returns:
            dict | None: The sample's record, or None when the sample does not count for this task
            (e.g. no labelled pixel).
        """

    @abstractmethod
    def compute(self, records: Sequence[Mapping[str, np.ndarray]]) -> Dict[str, float]:
        """Reduce the records of the evaluated set to metrics (metric name -> float)."""
