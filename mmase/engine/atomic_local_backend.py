"""A local file backend whose writes are atomic: a killed save never leaves a half-written file."""
import os
import os.path as osp
import re
import tempfile
from pathlib import Path
from typing import Optional, Union

from mmengine.fileio import LocalBackend, register_backend

#: Suffix of the temporary files written beside their target (``.<name>.<random>.tmp``).
TEMP_SUFFIX = '.tmp'


def write_atomic(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to a temporary file beside ``filepath``, fsync it, then rename over it.

    A process killed before the rename leaves ``filepath`` as it was (and, killed hard, a
    ``.<name>.<random>.tmp`` file beside it; see :func:`is_stale_temp_file`).
    """
    filepath = str(filepath)
    directory = osp.dirname(osp.abspath(filepath))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(filepath)}.', suffix=TEMP_SUFFIX,
                                   dir=directory)
    except OSError as err:
        raise _naming(err, filepath) from err
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException as err:
        if osp.exists(tmp):
            os.remove(tmp)
        if isinstance(err, OSError):
            raise _naming(err, filepath, len(data)) from err
        raise


def _naming(err: OSError, filepath: str, size: Optional[int] = None) -> OSError:
    """``err`` as the same OSError type, its message naming ``filepath`` (a write to a full disk
    otherwise says only "No space left on device")."""
    reason = err.strerror or str(err) or type(err).__name__
    what = f'{filepath} ({size} bytes)' if size is not None else filepath
    return type(err)(err.errno, f'cannot write {what}: {reason}')


def is_stale_temp_file(name: str) -> bool:
    """Whether the file name ``name`` is a temporary file of :func:`write_atomic`
    (``.<name>.<8 random characters>.tmp``)."""
    return re.fullmatch(r'\..+\.[A-Za-z0-9_]{8}' + re.escape(TEMP_SUFFIX), name) is not None


class AtomicLocalBackend(LocalBackend):
    """mmengine ``LocalBackend`` with atomic ``put`` / ``put_text`` (temporary file + rename).

    Select it for checkpoints with ``default_hooks.checkpoint.backend_args =
    dict(backend='atomic_local')``: a checkpoint file is either complete or absent, whenever the
    process dies. mmengine's own ``CheckpointHook`` still deletes the previous checkpoint before
    writing the next one and writes ``last_checkpoint`` in place; use ``SafeCheckpointHook`` with
    this backend so the previous checkpoint survives a killed save.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        write_atomic(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        write_atomic(obj.encode(encoding), filepath)


register_backend('atomic_local', AtomicLocalBackend, force=True)
