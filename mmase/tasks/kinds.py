"""Task kinds: the classes a task declaration's ``type`` names (registered in ``TASK_KINDS``).

A kind fixes what a map is and how it is handled; a declaration gives the rest::

    dict(type='SegmentationTask', name='semseg2', field='sem_seg2', num_classes=21)

- ``SegmentationTask``: class ids ``(1, H, W)`` int64, ignore 255, argmax, mIoU.
- ``BinaryTask``: {0, 1} map ``(1, H, W)`` int64, ignore 255, foreground probability; its meter
  must be declared (``SaliencyMeter`` maxF, ``EdgeMeter`` odsF, ...).
- ``NormalsTask``: unit vectors ``(3, H, W)`` float32, all-zero = invalid, L2-normalised, the
  x / y components change sign under horizontal / vertical flips, mean angular error.
- ``DepthTask``: metres ``(1, H, W)`` float32, 0 = invalid, raw output, RMSE.
- ``RegressionTask``: any float map ``(C, H, W)``, raw output, the per-pixel error meter.
- ``DenseTask``: everything declared, ``kind`` included: a kind the package has never named
  (e.g. ``kind='optical_flow'``) needs no code.
"""
from dataclasses import dataclass, field as dc_field
from typing import Optional, Tuple

from mmengine.registry import Registry

from .spec import TaskSpec

#: Task kinds (classes building a :class:`TaskSpec` from a declaration dict).
TASK_KINDS = Registry('task kind', scope='mmase')


def _fixed(value):
    """A dataclass field a declaration cannot set (the kind's own value)."""
    return dc_field(default=value, init=False)


@TASK_KINDS.register_module()
@dataclass(frozen=True, eq=False)
class DenseTask(TaskSpec):
    """A task whose every property is declared, its ``kind`` included (see :class:`TaskSpec`)."""


@TASK_KINDS.register_module()
@dataclass(frozen=True, eq=False)
class SegmentationTask(TaskSpec):
    """Integer class map; meter ``SegmentationMeter`` (``skip_no_foreground`` optional)."""
    kind: str = _fixed('segmentation')
    ignore_value: float = 255
    main_metric: str = 'mIoU'
    channels: int = _fixed(1)
    is_float: bool = _fixed(False)
    activation: str = _fixed('argmax')
    flip_sign: Optional[Tuple[int, int]] = _fixed(None)
    meter: dict = dc_field(default_factory=lambda: dict(type='SegmentationMeter'))


@TASK_KINDS.register_module()
@dataclass(frozen=True, eq=False)
class BinaryTask(TaskSpec):
    """{0, 1} map, prediction = foreground probability; declare its ``meter`` and
    ``main_metric``."""
    kind: str = _fixed('binary')
    ignore_value: float = 255
    main_metric: str = 'maxF'
    channels: int = _fixed(1)
    is_float: bool = _fixed(False)
    activation: str = _fixed('sigmoid')
    flip_sign: Optional[Tuple[int, int]] = _fixed(None)
    meter: dict = dc_field(default_factory=lambda: dict(type='SaliencyMeter'))


@TASK_KINDS.register_module()
@dataclass(frozen=True, eq=False)
class NormalsTask(TaskSpec):
    """Unit surface normals (x, y, z); all-zero = invalid."""
    kind: str = _fixed('normals')
    ignore_value: float = _fixed(0.0)
    lower_is_better: bool = True
    main_metric: str = 'mErr'
    channels: int = _fixed(3)
    is_float: bool = _fixed(True)
    activation: str = _fixed('normalize')
    flip_sign: Optional[Tuple[int, int]] = _fixed((0, 1))
    meter: dict = dc_field(default_factory=lambda: dict(type='NormalsMeter'))


@TASK_KINDS.register_module()
@dataclass(frozen=True, eq=False)
class DepthTask(TaskSpec):
    """Depth in metres; 0 = invalid."""
    kind: str = _fixed('depth')
    ignore_value: float = _fixed(0.0)
    lower_is_better: bool = True
    main_metric: str = 'rmse'
    channels: int = _fixed(1)
    is_float: bool = _fixed(True)
    activation: str = _fixed('identity')
    flip_sign: Optional[Tuple[int, int]] = _fixed(None)
    meter: dict = dc_field(default_factory=lambda: dict(type='DepthMeter'))


@TASK_KINDS.register_module()
@dataclass(frozen=True, eq=False)
class RegressionTask(TaskSpec):
    """A float map of ``channels`` values per pixel, scored by per-pixel error (MAE, RMSE)."""
    kind: str = _fixed('regression')
    ignore_value: float = 0.0
    lower_is_better: bool = True
    main_metric: str = 'mae'
    is_float: bool = _fixed(True)
    meter: dict = dc_field(default_factory=lambda: dict(type='PixelErrorMeter'))
