"""The task index of the forward in progress, for layers whose callers cannot pass it.

mmseg's backbones call their FFNs and attention with the tokens only (Swin's
``ffn(x, identity)``, SegFormer's ``MixFFN(x, hw_shape, identity)``), so the task-routed
layers wrapped into them read the task from a context that the wrapping backbone sets around
the inner backbone's call (:class:`TaskContext`): an int for the whole batch, or a LongTensor
``(N,)`` with one task per sample (the batched multi-task pass).
"""
import contextlib
from typing import Optional

from mmase.models.adapters.routers import TaskIndex


class TaskContext:
    """Holds the task index of the running forward; :meth:`current` reads it."""

    def __init__(self):
        self._task: Optional[TaskIndex] = None

    @contextlib.contextmanager
    def use(self, task: TaskIndex):
        """Set ``task`` for the duration of the block (restores the previous one after)."""
        previous, self._task = self._task, task
        try:
            yield
        finally:
            self._task = previous

    def current(self) -> TaskIndex:
        """The task index set by :meth:`use`.

        Raises:
            RuntimeError: called outside :meth:`use` (a wrapped layer run on its own).
        """
        if self._task is None:
            raise RuntimeError('a task-routed layer ran outside its backbone\'s forward: no task '
                               'index is set (call the wrapping backbone, not its inner one)')
        return self._task
