"""Verify a zip checkpoint's bytes against the CRC-32 that ``torch.save`` stores per entry.

``torch.load`` never checks them: a flipped byte in the tensor data loads silently and changes
the predictions. :func:`verify_zip_crcs` reads every entry once and compares its CRC-32 with the
one in the zip directory (Python's ``zipfile``: 16 MB reads, ``zlib.crc32``); a verified file
(same path, size, modification time and inode) is not read again in the same process, so the
tools' early check and the real load cost one pass. The cost on a ViT-B checkpoint (344 MB):
``tools/analysis/checkpoint_verify_cost.py``, see ``docs/distributed.md``.
"""
import os
import zipfile
from typing import Optional

_CHUNK = 1 << 24
_verified = set()  # (realpath, size, mtime_ns, inode) of files whose CRCs matched


class CheckpointBytesError(ValueError):
    """A checkpoint's bytes do not match the CRC-32 stored for them (bit rot, a bad copy)."""


def _identity(path: str) -> tuple:
    stat = os.stat(path)
    return (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)


def verify_zip_crcs(path: str, name: Optional[str] = None) -> None:
    """Raise :class:`CheckpointBytesError` naming the checkpoint and the first damaged entry
    when an entry's bytes do not match its stored CRC-32.

    Args:
        path (str): Local zip checkpoint (``torch.save``'s format; its directory already checked
            by :func:`~mmase.engine.checkpoint_check.inspect_checkpoint_file`).
        name (str, optional): How the message names the checkpoint. Defaults to ``path``.

    Raises:
        CheckpointBytesError: a CRC mismatch, or a file whose entries carry no CRC-32 at all
            (written with ``torch.utils.serialization.config.save.compute_crc32 = False``),
            whose bytes cannot be verified.
    """
    key = _identity(path)
    if key in _verified:
        return
    name = name or path
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        sized = [i for i in infos if i.file_size > 0]
        if sized and all(i.CRC == 0 for i in sized):
            raise CheckpointBytesError(
                f'cannot verify checkpoint {name}: its zip entries carry no CRC-32 (saved with '
                f'torch.utils.serialization.config.save.compute_crc32 = False?); save it again '
                f'with CRCs to load it')
        for info in infos:
            try:
                with archive.open(info) as entry:
                    while entry.read(_CHUNK):
                        pass
            except zipfile.BadZipFile as err:
                raise CheckpointBytesError(
                    f'cannot load checkpoint {name}: the file is damaged: the bytes of its entry '
                    f'{info.filename!r} do not match the CRC-32 stored for them ({err}); copy it '
                    f'again from its source') from None
    _verified.add(key)
