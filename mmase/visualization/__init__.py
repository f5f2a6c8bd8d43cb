from .figure import TaskFigure, figure_to_array, orientation_key
from .multitask_visualizer import MultiTaskLocalVisualizer
from .task_maps import encode_prediction, normals_to_rgb, render_task_map, save_predictions

__all__ = ['MultiTaskLocalVisualizer', 'TaskFigure', 'encode_prediction', 'figure_to_array',
           'normals_to_rgb', 'orientation_key', 'render_task_map', 'save_predictions']
