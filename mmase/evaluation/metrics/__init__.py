"""Metrics: the per-task meters and ``MultiTaskMetric`` (registered in mmseg's METRICS)."""
from .depth_meter import DepthMeter
from .edge_meter import EdgeMeter
from .multitask_metric import MultiTaskMetric
from .normals_meter import NormalsMeter
from .pixel_error_meter import PixelErrorMeter
from .saliency_meter import SaliencyMeter
from .segmentation_meter import SegmentationMeter, class_scores, class_table
from .meter_base import PROTOCOLS, TASK_METERS, TaskMeter
from .task_metrics import build_task_meter, task_metric_names
from .thinning import thin_stack

__all__ = [
    'MultiTaskMetric', 'TaskMeter', 'build_task_meter', 'PROTOCOLS', 'SegmentationMeter',
    'SaliencyMeter', 'NormalsMeter', 'EdgeMeter', 'DepthMeter', 'thin_stack', 'task_metric_names',
    'PixelErrorMeter', 'TASK_METERS', 'class_scores', 'class_table'
]
