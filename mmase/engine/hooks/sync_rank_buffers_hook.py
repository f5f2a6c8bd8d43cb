"""Every rank holds rank 0's buffers (BN running statistics) whenever it validates or saves."""
from collections import defaultdict

import torch.distributed as dist
from mmengine.dist import is_distributed
from mmengine.hooks import Hook
from mmseg.registry import HOOKS
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


def broadcast_buffers(model, src: int = 0) -> int:
    """Copy rank ``src``'s buffers into every rank's ``model`` (one broadcast per dtype).

    Returns the number of buffers broadcast (0 outside a distributed run).
    """
    if not is_distributed():
        return 0
    groups = defaultdict(list)
    for buffer in getattr(model, 'module', model).buffers():
        groups[(buffer.dtype, buffer.device)].append(buffer)
    for buffers in groups.values():
        flat = _flatten_dense_tensors([b.data for b in buffers])
        dist.broadcast(flat, src)
        for buffer, value in zip(buffers, _unflatten_dense_tensors(flat, [b.data for b in
                                                                          buffers])):
            buffer.data.copy_(value)
    return sum(len(b) for b in groups.values())


@HOOKS.register_module()
class SyncRankBuffersHook(Hook):
    """Broadcast rank 0's buffers to every rank after each training iteration and before each
    validation / test, so that all ranks validate with the state the checkpoint holds.

    Without it, a multi-process run whose BN is per process (plain ``BN``; CPU runs, where
    torch has no ``SyncBatchNorm``) validates rank ``r``'s share of the images with rank ``r``'s
    own running statistics, while the checkpoint (written by rank 0) keeps rank 0's: the saved
    validation metrics then describe no checkpoint (``tools/test.py`` on it gives other numbers).
    mmengine's ``SyncBuffersHook`` averages buffers at epoch ends and before validation, but
    not before an iteration-based save, so a checkpoint would still differ from what was
    validated. Rank 0's buffers are the ones DDP (``broadcast_buffers=True``, its default)
    already copies to every rank at each forward, so broadcasting them changes no training
    step: a run with this hook trains exactly as one without. It runs after every other
    ``after_train_iter`` hook of higher priority and before ``CheckpointHook`` (priority
    ``'LOW'``). Single-process runs: nothing is done.
    """

    priority = 'LOW'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        broadcast_buffers(runner.model)

    def before_val_epoch(self, runner) -> None:
        broadcast_buffers(runner.model)

    def before_test_epoch(self, runner) -> None:
        broadcast_buffers(runner.model)
