"""Stop training as soon as a loss becomes NaN or infinite."""
import math

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class CheckFiniteLossHook(Hook):
    """Raise ``FloatingPointError`` naming the task loss and iteration when a loss is not finite.

    Reads the logged loss values of each iteration (``'<task>.<loss>'`` keys of
    ``MultiTaskEncoderDecoder``), so it costs nothing beyond a dict scan.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        for key, value in (outputs or {}).items():
            if 'loss' not in key:
                continue
            value = float(value.item() if hasattr(value, 'item') else value)
            if not math.isfinite(value):
                task = key.split('.')[0] if '.' in key else 'total'
                raise FloatingPointError(
                    f'non-finite loss {key}={value} (task {task!r}) at iteration '
                    f'{runner.iter + 1}; training stopped. Lower the learning rate or the '
                    f'loss weight of {task!r}, or check its labels.')
