"""Evaluation: per-task metrics, ``MultiTaskMetric`` and Δm. Never imports ``mmase.models``."""
from .delta_m import (MAIN_METRICS, TABLE_TASK_ORDER, STLReference, delta_m, main_metric_key,
                      metric_lower_is_better, parse_stl_reference, per_task_delta_m,
                      resolve_main_metrics)
from .metrics import (PROTOCOLS, DepthMeter, EdgeMeter, MultiTaskMetric, NormalsMeter,
                      SaliencyMeter, SegmentationMeter, TaskMeter, build_task_meter, thin_stack,
                      PixelErrorMeter, TASK_METERS)

__all__ = [
    'delta_m', 'per_task_delta_m', 'MAIN_METRICS', 'main_metric_key', 'metric_lower_is_better',
    'resolve_main_metrics', 'parse_stl_reference', 'STLReference', 'TABLE_TASK_ORDER',
    'MultiTaskMetric',
    'TaskMeter', 'build_task_meter', 'PROTOCOLS', 'SegmentationMeter', 'SaliencyMeter',
    'NormalsMeter', 'EdgeMeter', 'DepthMeter', 'thin_stack', 'PixelErrorMeter', 'TASK_METERS'
]
