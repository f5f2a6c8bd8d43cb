"""Stop training as soon as a loss becomes NaN or infinite."""
import math

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class CheckFiniteLossHook(Hook):
    """Raise ``FloatingPointError`` naming the task loss and iteration when a loss is not finite.

    Reads the logged loss values of each iteration (``'<task>.<loss>'`` keys of
    ``MultiTaskEncoderDecoder`` plus the total ``'loss'``), so it costs nothing beyond a dict
    scan. The task losses are checked before the total, so the message names the task that went
    wrong (and lists every other non-finite one); the total alone is named only when every task
    loss is finite but their weighted sum is not. It runs before ``CheckpointHook``, so the
    iteration whose loss is not finite is never saved (its optimizer step has already run).
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        bad = []
        for key, value in (outputs or {}).items():
            if 'loss' not in key:
                continue
            value = float(value.item() if hasattr(value, 'item') else value)
            if not math.isfinite(value):
                bad.append((key, value))
        if not bad:
            return
        per_task = [(key, value) for key, value in bad if '.' in key]
        if per_task:
            key, value = per_task[0]
            task = key.split('.')[0]
            also = ', '.join(f'{k}={v}' for k, v in per_task[1:])
            raise FloatingPointError(
                f'non-finite loss {key}={value} (task {task!r}) at iteration {runner.iter + 1}'
                + (f' (also {also})' if also else '') + '; training stopped. Lower the learning '
                f'rate or the loss weight of {task!r}, or check its labels.')
        key, value = bad[0]
        raise FloatingPointError(
            f'non-finite total loss {key}={value} at iteration {runner.iter + 1} while every task '
            f'loss is finite (their weighted sum overflows); training stopped. Lower the loss '
            f'weights or the learning rate.')
