"""The table that picks a meter for each task (the meter base is :mod:`.meter_base`).

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

Meters are registered in :data:`TASK_METERS`; each task's declaration names its meter
(``meter=dict(type='SaliencyMeter', ...)``, :mod:`mmase.tasks`) and :func:`build_task_meter`
builds it, adding the arguments the meter class lists in ``CONTEXT_ARGS`` (``protocol``,
``ignore_index`` / ``ignore_value`` from the declaration, ``num_classes``, the edge
``tolerance`` / ``pos_weight``). A meter class also says which metrics it returns
(``metric_names(protocol)``).
"""
from typing import Optional, Tuple

from mmase.tasks import get_task_spec
# the meter modules register themselves in TASK_METERS on import
from . import depth_meter, edge_meter, normals_meter, saliency_meter  # noqa: F401
from . import pixel_error_meter, segmentation_meter  # noqa: F401
# the base names, importable from here as before
from .meter_base import (PROTOCOLS, TASK_METERS, TaskMeter, check_protocol,  # noqa: F401
                         safe_divide, sum_records)


def task_metric_names(task: str, protocol: str) -> Tuple[str, ...]:
    """Names of the metrics the meter of ``task`` returns under ``protocol`` (the suffixes of
    ``MultiTaskMetric``'s ``<task>/<name>`` keys).

    Args:
        task (str): A declared task (``mmase.tasks.TASK_SPECS``).
        protocol (str): ``'invpt'`` | ``'astmt'`` | ``'atrc'``.

    Returns:
        tuple[str, ...]: Metric names, e.g. ``('maxF', 'maxF_atrc', 'mIoU', 'mIoU_pooled')`` for
        ``sal`` under ``'invpt'``.
    """
    check_protocol(protocol)
    return meter_class(task).metric_names(protocol)


def meter_class(task: str) -> type:
    """The meter class the declaration of ``task`` names (``meter.type``)."""
    spec = get_task_spec(task)
    cls = TASK_METERS.get(spec.meter['type'])
    if cls is None:
        raise ValueError(f'task {task!r}: meter.type={spec.meter["type"]!r} is not a registered '
                         f'meter; known: {sorted(TASK_METERS.module_dict)}')
    return cls


def build_task_meter(task: str,
                     protocol: str = 'invpt',
                     num_classes: Optional[int] = None,
                     edge_tolerance: float = 0.0075,
                     edge_pos_weight: float = 0.95,
                     edge_matcher: str = 'exact') -> TaskMeter:
    """Build the meter of ``task`` for ``protocol``.

    Args:
        task (str): A declared task (``mmase.tasks.TASK_SPECS``).
        protocol (str): ``'invpt'`` | ``'astmt'`` | ``'atrc'``. Default: ``'invpt'``.
        num_classes (int, optional): Number of classes, required for segmentation tasks.
        edge_tolerance (float): Edge matching distance as a fraction of the image diagonal.
        edge_pos_weight (float): Positive-class weight of the balanced BCE edge loss.
        edge_matcher (str): ``'exact'`` or ``'seism'`` (``EdgeMeter.matcher``).

    Returns:
        TaskMeter: The meter the task's declaration names (``spec.meter``), e.g.
        ``SegmentationMeter`` (human_parts skipping images without parts), ``SaliencyMeter``,
        ``NormalsMeter``, ``EdgeMeter``, ``DepthMeter`` or ``PixelErrorMeter``.
    """
    check_protocol(protocol)
    spec = get_task_spec(task)
    cls = meter_class(task)
    cfg = {k: v for k, v in spec.meter.items() if k != 'type'}
    context = dict(protocol=protocol, ignore_index=int(spec.ignore_value),
                   ignore_value=float(spec.ignore_value), num_classes=num_classes,
                   tolerance=edge_tolerance, pos_weight=edge_pos_weight, matcher=edge_matcher)
    for name in getattr(cls, 'CONTEXT_ARGS', ()):
        if name in cfg:
            continue  # the declaration's own value
        if name == 'num_classes' and num_classes is None:
            raise ValueError(f'task {task!r} needs num_classes to build its meter')
        cfg[name] = context[name]
    try:
        return cls(**cfg)
    except TypeError as err:
        raise ValueError(f'task {task!r}: meter={spec.meter!r}: {err}') from None
