"""check_checkpoint: the tools' up-front refusal of crafted checkpoints."""
import os

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner.checkpoint import save_checkpoint

from mmase.engine import UnsafeCheckpointError, check_checkpoint


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def test_mmengine_checkpoint_passes(tmp_path):
    hub = MessageHub.get_instance('checkpoint_check_test')
    hub.update_scalar('train/loss', 0.5)
    path = str(tmp_path / 'ok.pth')
    save_checkpoint(dict(state_dict={'w': torch.ones(2)}, meta=dict(
        message_hub=hub.state_dict(), seed=0)), path)
    check_checkpoint(path)
    legacy = str(tmp_path / 'legacy.pth')  # pre-zip format: cannot be memory-mapped
    torch.save({'state_dict': {'w': torch.ones(2)}}, legacy, _use_new_zipfile_serialization=False)
    check_checkpoint(legacy)


def test_crafted_checkpoint_is_refused_naming_file_and_global(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': _Evil(str(marker))}, path)
    pattern = rf'refusing to load checkpoint {path}: .*GLOBAL posix\.system'
    with pytest.raises(UnsafeCheckpointError, match=pattern) as info:
        check_checkpoint(str(path))
    assert 'weights_only set to `False` will likely succeed' not in str(info.value)
    assert not marker.exists()


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'checkpoint .*nope\.pth does not exist'):
        check_checkpoint(str(tmp_path / 'nope.pth'))
