"""A progress bar over the test (and validation) set, on the main process."""
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.utils import ProgressBar
from mmseg.registry import HOOKS


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """Show mmengine's ``ProgressBar`` while testing (and, if ``val=True``, validating).

    Counts batches of the current dataloader; only rank 0 draws it.

    Args:
        val (bool): Also draw it during validation. Default False.
    """

    priority = 'VERY_LOW'

    def __init__(self, val: bool = False):
        self.val = val
        self._bar = None

    def _start(self, dataloader) -> None:
        self._bar = ProgressBar(len(dataloader)) if is_main_process() else None

    def _step(self) -> None:
        if self._bar is not None:
            self._bar.update()

    def _finish(self) -> None:
        if self._bar is not None:
            self._bar.file.write('\n')
            self._bar = None

    def before_test_epoch(self, runner) -> None:
        self._start(runner.test_dataloader)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._step()

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._finish()

    def before_val_epoch(self, runner) -> None:
        if self.val:
            self._start(runner.val_dataloader)

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._step()

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._finish()
