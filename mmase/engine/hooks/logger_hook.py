"""mmengine's ``LoggerHook`` with the test metrics JSON written by the main process only."""
import os.path as osp
from typing import Dict, Optional

from mmengine.dist import is_main_process
from mmengine.fileio import dump
from mmengine.hooks import LoggerHook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class MainProcessLoggerHook(LoggerHook):
    """``LoggerHook`` whose ``after_test_epoch`` writes ``<log_dir>/<timestamp>.json`` on the main
    process only.

    mmengine 0.10's ``LoggerHook.after_test_epoch`` dumps that file from every process of a
    distributed test, all to the same path; the per-rank timings in it differ in length, so two
    concurrent writes can leave a mixed, invalid JSON file. Everything else is ``LoggerHook``
    (same arguments).
    """

    def after_test_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        tag, log_str = runner.log_processor.get_log_after_epoch(
            runner, len(runner.test_dataloader), 'test', with_non_scalar=True)
        runner.logger.info(log_str)
        if is_main_process():
            dump(self._process_tags(tag), osp.join(runner.log_dir, self.json_log_path))
