"""Stop training as soon as a loss, or the state about to be saved, becomes NaN or infinite."""
import math

from mmengine.hooks import CheckpointHook, Hook
from mmseg.registry import HOOKS

from ..finite_state import check_finite_state, nonfinite_entries


@HOOKS.register_module()
class CheckFiniteLossHook(Hook):
    """Raise ``FloatingPointError`` naming the task loss and iteration when a loss is not finite.

    Reads the logged loss values of each iteration (``'<task>.<loss>'`` keys of
    ``MultiTaskEncoderDecoder`` plus the total ``'loss'``), so it costs nothing beyond a dict
    scan. The task losses are checked before the total, so the message names the task that went
    wrong (and lists every other non-finite one); the total alone is named only when every task
    loss is finite but their weighted sum is not. It runs before ``CheckpointHook``, so the
    iteration whose loss is not finite is never saved (its optimizer step has already run).

    A finite loss does not make a finite state (a BN ``running_var`` can overflow while the
    normalised outputs stay finite), so at every iteration (and epoch end) where a
    ``CheckpointHook`` is due to save, and before every save (``before_save_checkpoint``), the
    model's parameters and buffers are checked too: non-finite ones stop training, named, before
    the state is written.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._check_losses(runner, outputs)
        if any(self._save_due(hook, runner) for hook in getattr(runner, 'hooks', ())):
            check_finite_state(runner.model, f'the checkpoint of iteration {runner.iter + 1}')

    def after_train_epoch(self, runner) -> None:
        if any(isinstance(hook, CheckpointHook) and hook.by_epoch
               for hook in getattr(runner, 'hooks', ())):
            check_finite_state(runner.model, f'the checkpoint of epoch {runner.epoch + 1}')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        bad = nonfinite_entries(checkpoint.get('state_dict', {}))
        if bad:
            raise FloatingPointError(
                f'non-finite model state before saving a checkpoint at iteration {runner.iter}: '
                f'{"; ".join(bad)}. Training stopped without saving it.')

    @staticmethod
    def _save_due(hook, runner) -> bool:
        """Whether the iteration-based ``CheckpointHook`` ``hook`` saves after this iteration."""
        if not isinstance(hook, CheckpointHook) or hook.by_epoch:
            return False
        return hook.every_n_train_iters(runner, hook.interval, hook.save_begin) or (
            hook.save_last and hook.is_last_train_iter(runner))

    def _check_losses(self, runner, outputs) -> None:
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
