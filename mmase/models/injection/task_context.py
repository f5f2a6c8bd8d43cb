"""The task index of the forward in progress: the one way it reaches the routed layers.

Backbones call their FFNs and attention with the tokens only (timm's ``mlp(x)``, Swin's
``ffn(x, identity)``, SegFormer's ``MixFFN(x, hw_shape, identity)``), so the multi-task
backbone sets the task index once per pass on a :class:`TaskContext` (an int for the whole
batch, or a LongTensor ``(N,)`` with one task per sample: the batched multi-task pass) and
every routed layer the injector installed reads it through a forward pre-hook
(:meth:`TaskContext.bind`). Routed layers themselves keep ``forward(x, task)``: they see a
tensor and a task index, nothing of backbones.
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

    def supply_task(self, module, args, kwargs):
        """Forward pre-hook of a routed layer: hands it the task index when its host called it
        with the input only (``layer(x)``), the one way the task reaches layers."""
        if len(args) < 2 and 'task' not in kwargs:
            kwargs = dict(kwargs, task=self.current())
        return args, kwargs

    def bind(self, layer):
        """Let ``layer`` (whose forward is ``(x, task)``) read the task from this context."""
        layer.register_forward_pre_hook(self.supply_task, with_kwargs=True)
        return layer
