"""The per-task meter interface and the table that picks a meter for each task.

A meter turns one sample's prediction and ground truth into a small *record* of counts (a dict of
numbers and small arrays, never whole maps) and reduces the records of the whole set into metrics.
Records are plain picklable data, so :class:`~mmase.evaluation.metrics.MultiTaskMetric` can keep one
per sample in ``self.results`` and mmengine can gather them from several processes.

Evaluation protocols (DESIGN.md, "Evaluation protocols"):

- ``'invpt'`` (default): InvPT / TaskPrompter / MLoRE public meters. Saliency maxF pooled over the
  set with β² = 0.3 at thresholds 0.05..0.95, *with the second sigmoid* those meters apply
  (threshold t acts on sigmoid(p)); the correct (``'atrc'``) maxF is reported beside it as
  ``maxF_atrc``.
- ``'atrc'``: the same saliency maxF without the second sigmoid.
- ``'astmt'``: ASTMT / MTI-Net meters. Saliency precision and recall per image at 15 thresholds in
  [0.2, 0.9], averaged over images, β² = 1; normals also median, RMSE and % within 11.25/22.5/30°.

Segmentation, edge and depth metrics, and the saliency ``mIoU`` (the ASTMT / MTLoRA meter), are
the same in every protocol. :func:`task_metric_names` lists what each task reports under each
protocol, so a config's choice of main metric can be checked before anything runs.
"""
from abc import ABCMeta, abstractmethod
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np

from mmase.tasks import get_task_spec

#: Names of the evaluation protocols.
PROTOCOLS = ('invpt', 'astmt', 'atrc')


def check_protocol(protocol: str, field: str = 'protocol') -> str:
    """Return ``protocol`` if it is a known protocol, else raise a ValueError naming ``field``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f'{field}={protocol!r} is not a known evaluation protocol; choose from '
                         f'{PROTOCOLS}')
    return protocol


def task_metric_names(task: str, protocol: str) -> Tuple[str, ...]:
    """Names of the metrics the meter of ``task`` returns under ``protocol`` (the suffixes of
    ``MultiTaskMetric``'s ``<task>/<name>`` keys).

    Args:
        task (str): Task name (a key of ``mmase.tasks.TASK_SPECS``).
        protocol (str): ``'invpt'`` | ``'astmt'`` | ``'atrc'``.

    Returns:
        tuple[str, ...]: Metric names, e.g. ``('maxF', 'maxF_atrc', 'mIoU', 'mIoU_pooled')`` for
        ``sal`` under ``'invpt'``.
    """
    check_protocol(protocol)
    spec = get_task_spec(task)
    if spec.kind == 'segmentation':
        return ('mIoU', )
    if task == 'sal':
        return ('maxF', ) + (('maxF_atrc', ) if protocol == 'invpt' else ()) + ('mIoU',
                                                                                'mIoU_pooled')
    if task == 'edge':
        return ('odsF', 'loss')
    if spec.kind == 'normals':
        extra = ('median', 'rmse', 'within11.25', 'within22.5', 'within30')
        return ('mErr', ) + (extra if protocol == 'astmt' else ())
    if spec.kind == 'depth':
        return ('rmse', 'abs_rel', 'delta1')
    raise ValueError(f'no meter is defined for task {task!r} (kind {spec.kind!r})')


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


def build_task_meter(task: str,
                     protocol: str = 'invpt',
                     num_classes: Optional[int] = None,
                     edge_tolerance: float = 0.0075,
                     edge_pos_weight: float = 0.95) -> TaskMeter:
    """Build the meter of ``task`` for ``protocol``.

    Args:
        task (str): Task name (a key of ``mmase.tasks.TASK_SPECS``).
        protocol (str): ``'invpt'`` | ``'astmt'`` | ``'atrc'``. Default: ``'invpt'``.
        num_classes (int, optional): Number of classes, required for segmentation tasks.
        edge_tolerance (float): Edge matching distance as a fraction of the image diagonal.
        edge_pos_weight (float): Positive-class weight of the balanced BCE edge loss.

    Returns:
        TaskMeter: ``SegmentationMeter`` (semseg; human_parts skipping images without parts),
        ``SaliencyMeter``, ``NormalsMeter``, ``EdgeMeter`` or ``DepthMeter``.
    """
    # imported here: the meter modules import this one for the base class
    from .depth_meter import DepthMeter
    from .edge_meter import EdgeMeter
    from .normals_meter import NormalsMeter
    from .saliency_meter import SaliencyMeter
    from .segmentation_meter import SegmentationMeter

    check_protocol(protocol)
    spec = get_task_spec(task)
    if spec.kind == 'segmentation':
        if num_classes is None:
            raise ValueError(f'task {task!r} needs num_classes to build its meter')
        return SegmentationMeter(num_classes, ignore_index=int(spec.ignore_value),
                                 skip_no_foreground=task == 'human_parts')
    if task == 'sal':
        return SaliencyMeter(protocol, ignore_index=int(spec.ignore_value))
    if task == 'edge':
        return EdgeMeter(tolerance=edge_tolerance, pos_weight=edge_pos_weight,
                         ignore_index=int(spec.ignore_value))
    if spec.kind == 'normals':
        return NormalsMeter(protocol)
    if spec.kind == 'depth':
        return DepthMeter()
    raise ValueError(f'no meter is defined for task {task!r} (kind {spec.kind!r})')
