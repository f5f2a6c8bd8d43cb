"""Activation checkpointing of a backbone's blocks (``with_cp``, mmseg's name), for any family.

Each block's activations are dropped after its forward and recomputed in the backward pass
(``torch.utils.checkpoint``, non-reentrant): same outputs and gradients, less memory. The
recomputation runs after the pass has left its task context, so the block's forward is replaced
(on the instance, by a method: ``state_dict`` and ``deepcopy`` see the same block) with one that
captures the task index of the pass and sets it again around the recomputation.
"""
import types
from typing import Iterable

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp

from .task_context import TaskContext


def _checkpointed_forward(self, *args, **kwargs):
    forward = type(self).forward
    if not (self.training and torch.is_grad_enabled()):
        return forward(self, *args, **kwargs)
    context = self._task_context_for_cp
    task = context.current()

    def run(*inputs):
        with context.use(task):
            return forward(self, *inputs, **kwargs)

    return cp.checkpoint(run, *args, use_reentrant=False)


def checkpoint_blocks(blocks: Iterable[nn.Module], context: TaskContext) -> None:
    """Recompute each of ``blocks`` in the backward pass, routing as in its forward."""
    for block in blocks:
        block._task_context_for_cp = context
        block.forward = types.MethodType(_checkpointed_forward, block)
