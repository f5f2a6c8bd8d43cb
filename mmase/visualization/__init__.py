from .figure import TaskFigure, figure_to_array, orientation_key
from .multitask_visualizer import MultiTaskLocalVisualizer
from .per_class_iou_hook import PerClassIoUHook, confusion_matrix, iou_table, per_class_scores
from .save_predictions_hook import SavePredictionsHook
from .task_maps import encode_prediction, normals_to_rgb, render_task_map, save_predictions

__all__ = ['MultiTaskLocalVisualizer', 'PerClassIoUHook', 'SavePredictionsHook', 'TaskFigure',
           'confusion_matrix', 'encode_prediction', 'figure_to_array', 'iou_table',
           'normals_to_rgb', 'orientation_key', 'per_class_scores', 'render_task_map',
           'save_predictions']
