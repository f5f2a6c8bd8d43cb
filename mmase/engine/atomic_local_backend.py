"""A local file backend whose writes are atomic: a killed save never leaves a half-written file."""
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend


def _write_atomic(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to a temporary file beside ``filepath``, fsync it, then rename over it."""
    filepath = str(filepath)
    directory = osp.dirname(osp.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(filepath)}.', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


class AtomicLocalBackend(LocalBackend):
    """mmengine ``LocalBackend`` with atomic ``put`` / ``put_text`` (temporary file + rename).

    Select it for checkpoints with ``default_hooks.checkpoint.backend_args =
    dict(backend='atomic_local')``: the previous checkpoint and ``last_checkpoint`` stay intact if
    the process dies while saving.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        _write_atomic(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        _write_atomic(obj.encode(encoding), filepath)


register_backend('atomic_local', AtomicLocalBackend, force=True)
