"""A checkpoint's bytes are checked against the CRC-32s torch.save stores: one flipped byte in
the tensor data (which torch.load reads without complaint) is refused, naming the file."""
import struct
import zipfile

import pytest
import torch

from mmase.engine import checkpoint_bytes
from mmase.engine.checkpoint_check import InvalidCheckpointError, load_checkpoint_file


def flip_byte(path, entry_suffix='/data/0', offset=5):
    """Flip one bit of the data of the zip entry ending with ``entry_suffix``."""
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(entry_suffix))
    with open(path, 'r+b') as f:
        f.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack('<HH', f.read(4))
        f.seek(info.header_offset + 30 + name_length + extra_length + offset)
        byte = f.read(1)[0]
        f.seek(-1, 1)
        f.write(bytes([byte ^ 0x10]))
    return info.filename


def test_flipped_byte_is_refused_naming_file_and_entry(tmp_path):
    path = str(tmp_path / 'rotten.pth')
    torch.save(dict(state_dict=dict(weight=torch.arange(16.0))), path)
    assert torch.equal(load_checkpoint_file(path)['state_dict']['weight'], torch.arange(16.0))
    entry = flip_byte(path)
    damaged = torch.load(path, weights_only=True)['state_dict']['weight']  # torch: no complaint
    assert not torch.equal(damaged, torch.arange(16.0))
    with pytest.raises(InvalidCheckpointError,
                       match=rf'cannot load checkpoint {path}: the file is damaged: the bytes of '
                             rf"its entry '{entry}' do not match the CRC-32"):
        load_checkpoint_file(path)


def test_verified_once_per_file_version(tmp_path, monkeypatch):
    path = str(tmp_path / 'good.pth')
    torch.save(dict(state_dict=dict(weight=torch.ones(4))), path)
    reads = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, 'open',
                        lambda self, *a, **k: reads.append(1) or real_open(self, *a, **k))
    checkpoint_bytes.verify_zip_crcs(path)
    first = len(reads)
    assert first > 0
    checkpoint_bytes.verify_zip_crcs(path)  # same path, size, mtime, inode: not read again
    assert len(reads) == first
    torch.save(dict(state_dict=dict(weight=torch.zeros(4))), path)  # a new version is read
    checkpoint_bytes.verify_zip_crcs(path)
    assert len(reads) > first


def test_checkpoint_without_crcs_is_refused(tmp_path):
    import torch.utils.serialization as serialization
    path = str(tmp_path / 'no_crc.pth')
    serialization.config.save.compute_crc32 = False
    try:
        torch.save(dict(state_dict=dict(weight=torch.ones(4))), path)
    finally:
        serialization.config.save.compute_crc32 = True
    with pytest.raises(InvalidCheckpointError, match=r'no_crc\.pth: its zip entries carry no '
                                                     r'CRC-32'):
        load_checkpoint_file(path)
