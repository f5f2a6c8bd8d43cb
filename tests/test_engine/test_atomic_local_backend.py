"""Checkpoint writes through the 'atomic_local' backend never leave a half-written file."""
import os

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import save_checkpoint

from mmase.engine import AtomicLocalBackend


def test_backend_is_selected_by_backend_args(tmp_path):
    backend = get_file_backend(str(tmp_path / 'x.pth'), backend_args=dict(backend='atomic_local'))
    assert isinstance(backend, AtomicLocalBackend)


def test_kill_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / 'iter_1.pth')
    args = dict(backend='atomic_local')
    save_checkpoint({'state_dict': {'w': torch.ones(3)}}, path, backend_args=args)

    def killed(*_):
        raise KeyboardInterrupt  # the process dies between writing and renaming

    monkeypatch.setattr(os, 'replace', killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, path, backend_args=args)
    monkeypatch.undo()
    assert torch.load(path)['state_dict']['w'].tolist() == [1.0, 1.0, 1.0]
    assert os.listdir(tmp_path) == ['iter_1.pth']  # no temporary file left behind


def test_put_text_is_atomic_too(tmp_path):
    backend = AtomicLocalBackend()
    target = tmp_path / 'sub' / 'last_checkpoint'
    backend.put_text('iter_4.pth', target)
    assert target.read_text() == 'iter_4.pth'


@pytest.mark.parametrize('where', ['write', 'fsync'])
def test_full_disk_names_the_file(tmp_path, monkeypatch, where):
    """ENOSPC from the write or the fsync: the error names the file, no temporary is left."""
    import errno

    from mmase.engine import atomic_local_backend
    from mmase.engine.hooks.save_metrics_hook import write_json_atomic

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, 'No space left on device')

    if where == 'fsync':
        monkeypatch.setattr(atomic_local_backend.os, 'fsync', full)
    else:
        real_fdopen = os.fdopen

        class FullFile:
            def __init__(self, fd, mode):
                self.f = real_fdopen(fd, mode)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

            def write(self, data):
                full()

        monkeypatch.setattr(atomic_local_backend.os, 'fdopen', FullFile)
    target = tmp_path / 'iter_4.pth'
    with pytest.raises(OSError, match=rf'cannot write {target} \(3 bytes\): No space left') as info:
        atomic_local_backend.write_atomic(b'abc', target)
    assert info.value.errno == errno.ENOSPC
    with pytest.raises(OSError, match=r'cannot write .*metrics_val_iter_4\.json'):
        write_json_atomic(str(tmp_path / 'metrics_val_iter_4.json'), {'a': 1})
    assert os.listdir(tmp_path) == []
