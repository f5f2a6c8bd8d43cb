"""SafeCheckpointHook: a save killed at any point leaves last_checkpoint naming a complete file."""
import io
import os
from types import SimpleNamespace

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.hooks import CheckpointHook
from mmengine.logging import MessageHub, MMLogger

from mmase.engine import SafeCheckpointHook
from mmase.engine.atomic_local_backend import is_stale_temp_file

BACKEND = dict(backend='atomic_local')


class FakeRunner(SimpleNamespace):
    """What CheckpointHook uses of a Runner; ``save_checkpoint`` writes ``{'iter': step}`` through
    the hook's file backend and can be told to die before the rename."""

    def __init__(self, work_dir, name):
        super().__init__(work_dir=str(work_dir), logger=MMLogger.get_instance(name),
                         message_hub=MessageHub.get_instance(name), kill_at=None,
                         model=torch.nn.BatchNorm1d(2))

    def save_checkpoint(self, out_dir, filename, file_client_args=None, save_optimizer=True,
                        save_param_scheduler=True, meta=None, by_epoch=True, backend_args=None):
        path = os.path.join(out_dir, filename)
        if filename == self.kill_at:
            real_replace = os.replace

            def killed(*_):
                raise KeyboardInterrupt  # the process dies after writing, before renaming

            os.replace = killed
            try:
                get_file_backend(path, backend_args=backend_args).put(b'partial', path)
            finally:
                os.replace = real_replace
        buffer = io.BytesIO()
        torch.save(dict(meta=meta), buffer)
        get_file_backend(path, backend_args=backend_args).put(buffer.getvalue(), path)


def save(hook, runner, step):
    hook._save_checkpoint_with_step(runner, step, meta=dict(iter=step))


def last_checkpoint(runner):
    with open(os.path.join(runner.work_dir, 'last_checkpoint')) as f:
        return os.path.basename(f.read())


@pytest.mark.parametrize('hook_type,survives', [(SafeCheckpointHook, True),
                                                (CheckpointHook, False)])
def test_killed_save_keeps_the_previous_checkpoint(tmp_path, hook_type, survives):
    runner = FakeRunner(tmp_path, f'safe_ckpt_{hook_type.__name__}')
    hook = hook_type(interval=2, by_epoch=False, max_keep_ckpts=1, backend_args=BACKEND)
    hook.before_train(runner)
    save(hook, runner, 2)
    assert sorted(os.listdir(tmp_path)) == ['iter_2.pth', 'last_checkpoint']
    runner.kill_at = 'iter_4.pth'
    with pytest.raises(KeyboardInterrupt):
        save(hook, runner, 4)
    # mmengine's hook deleted iter_2.pth before writing iter_4.pth: nothing left to resume from
    assert os.path.isfile(tmp_path / 'iter_2.pth') is survives
    assert last_checkpoint(runner) == 'iter_2.pth'
    assert not os.path.exists(tmp_path / 'iter_4.pth')


def test_old_checkpoints_go_only_after_the_new_one_is_in_place(tmp_path):
    runner = FakeRunner(tmp_path, 'safe_ckpt_order')
    hook = SafeCheckpointHook(interval=2, by_epoch=False, max_keep_ckpts=2, backend_args=BACKEND)
    hook.before_train(runner)
    for step in (2, 4, 6):
        save(hook, runner, step)
        assert last_checkpoint(runner) == f'iter_{step}.pth'
    assert sorted(os.listdir(tmp_path)) == ['iter_4.pth', 'iter_6.pth', 'last_checkpoint']
    assert runner.message_hub.get_info('keep_ckpt_ids') == [4, 6]  # as mmengine keeps them
    assert torch.load(tmp_path / 'iter_6.pth')['meta'] == dict(iter=6)
    save(hook, runner, 6)  # saving the same step again (save_best re-save) removes nothing
    assert sorted(os.listdir(tmp_path)) == ['iter_4.pth', 'iter_6.pth', 'last_checkpoint']


def test_before_train_removes_temporary_files_of_a_killed_save(tmp_path):
    runner = FakeRunner(tmp_path, 'safe_ckpt_stale')
    hook = SafeCheckpointHook(interval=2, by_epoch=False, backend_args=BACKEND)
    hook.before_train(runner)
    runner.kill_at = 'iter_2.pth'
    with pytest.raises(KeyboardInterrupt):
        save(hook, runner, 2)
    # a KeyboardInterrupt cleans up; a SIGKILL does not: leave one as SIGKILL would
    (tmp_path / '.iter_2.pth.ab_cd123.tmp').write_bytes(b'partial')
    (tmp_path / 'notes.tmp').write_text('not ours')
    assert is_stale_temp_file('.iter_2.pth.ab_cd123.tmp')
    SafeCheckpointHook(interval=2, by_epoch=False, backend_args=BACKEND).before_train(runner)
    assert sorted(os.listdir(tmp_path)) == ['notes.tmp']
