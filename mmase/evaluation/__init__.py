"""Evaluation: per-task metrics, ``MultiTaskMetric`` and Δm. Never imports ``mmase.models``."""
from .delta_m import MAIN_METRICS, delta_m, main_metric_key, per_task_delta_m
from .metrics import (PROTOCOLS, DepthMeter, EdgeMeter, MultiTaskMetric, NormalsMeter,
                      SaliencyMeter, SegmentationMeter, TaskMeter, build_task_meter, thin_stack)

__all__ = [
    'delta_m', 'per_task_delta_m', 'MAIN_METRICS', 'main_metric_key', 'MultiTaskMetric',
    'TaskMeter', 'build_task_meter', 'PROTOCOLS', 'SegmentationMeter', 'SaliencyMeter',
    'NormalsMeter', 'EdgeMeter', 'DepthMeter', 'thin_stack'
]
