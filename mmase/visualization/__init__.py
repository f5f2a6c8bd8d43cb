from .multitask_visualizer import MultiTaskLocalVisualizer, render_task_map

__all__ = ['MultiTaskLocalVisualizer', 'render_task_map']
