"""Dense tasks as registered objects: task kinds, declarations and the declared tasks.

A task is declared by a config dict whose ``type`` is a kind of :data:`TASK_KINDS`
(:mod:`mmase.tasks.kinds`); the six shipped tasks are declared the same way
(:mod:`mmase.tasks.shipped`). ``TASK_SPECS`` is a live read-only mapping of the declared tasks.
See docs/adding_a_task.md.
"""
from .kinds import (TASK_KINDS, BinaryTask, DenseTask, DepthTask, NormalsTask, RegressionTask,
                    SegmentationTask)
from .registry import (TASK_SPECS, build_task, check_tasks, declare_tasks, get_task_spec,
                       task_spec_by_gt_field, undeclare_task)
from .shipped import SHIPPED_TASKS
from .spec import ACTIVATIONS, ANNOTATION_DECODERS, TaskSpec

declare_tasks(SHIPPED_TASKS, 'mmase.tasks.SHIPPED_TASKS')

__all__ = [
    'TaskSpec', 'TASK_KINDS', 'TASK_SPECS', 'SHIPPED_TASKS', 'ACTIVATIONS',
    'ANNOTATION_DECODERS', 'build_task', 'declare_tasks', 'undeclare_task', 'get_task_spec',
    'check_tasks', 'task_spec_by_gt_field', 'SegmentationTask', 'BinaryTask', 'NormalsTask',
    'DepthTask', 'RegressionTask', 'DenseTask'
]
