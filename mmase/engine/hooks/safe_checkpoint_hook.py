"""A ``CheckpointHook`` whose save can be killed at any moment without losing the last one."""
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ..atomic_local_backend import is_stale_temp_file, write_atomic
from ..finite_state import check_finite_state


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with a crash-safe order of file operations.

    mmengine 0.10 deletes the oldest checkpoint *before* writing the new one (``max_keep_ckpts``)
    and rewrites ``last_checkpoint`` in place with ``open(..., 'w')``. With ``max_keep_ckpts=1``, a
    process killed while writing ``iter_4.pth`` leaves no checkpoint at all and a
    ``last_checkpoint`` naming the deleted ``iter_2.pth``, so ``--resume`` fails. This hook
    instead

    1. writes the new checkpoint (atomic when ``backend_args=dict(backend='atomic_local')``),
    2. points ``last_checkpoint`` at it (temporary file + rename),
    3. only then deletes the checkpoints beyond ``max_keep_ckpts``,

    so at every instant ``last_checkpoint`` names a complete checkpoint. Before any of it, every
    parameter and buffer must be finite, else ``FloatingPointError`` names them and nothing is
    written or deleted: ``last_checkpoint`` keeps naming the last finite checkpoint, which
    ``max_keep_ckpts`` never removes in favour of a poisoned one. The ids kept
    (``keep_ckpt_ids`` in the message hub, stored in each checkpoint) are the same as with
    mmengine's hook. ``before_train`` also deletes temporary files left in the checkpoint
    directory by a save that was killed (``.<name>.<random>.tmp``). Arguments: those of
    ``mmengine.hooks.CheckpointHook``.

    Note: ``save_best`` keeps mmengine's order (old best removed before the new best is written).
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if not is_main_process():
            return
        for directory in dict.fromkeys((self.out_dir, runner.work_dir)):  # checkpoints, pointer
            if not osp.isdir(directory):  # e.g. a remote out_dir
                continue
            for name in sorted(os.listdir(directory)):
                if is_stale_temp_file(name):
                    os.remove(osp.join(directory, name))
                    print_log(f'SafeCheckpointHook: removed {osp.join(directory, name)}, left by '
                              f'an interrupted save', logger='current')

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        check_finite_state(runner.model, f'saving {self.filename_tmpl.format(step)}')
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        write_atomic(self.last_ckpt.encode('utf-8'), osp.join(runner.work_dir, 'last_checkpoint'))
        for old_step in outdated:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old_step))
            if path == self.last_ckpt:
                continue
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # checkpoints saved by deepspeed are directories
                self.file_backend.rmtree(path)
