"""Refuse an unsafe checkpoint before a tool builds anything, with a message naming the file."""
import os.path as osp
import pickle

import torch


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds pickled objects outside the ``weights_only`` allowlist."""


def _reason(err: Exception) -> str:
    """The informative lines of torch's ``weights_only`` error (without its advice to retry
    with ``weights_only=False``)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    keep = [line for line in lines
            if not line.startswith(('Weights only load failed', 'Check the documentation'))]
    return ' '.join(keep) or (lines[0] if lines else type(err).__name__)


def check_checkpoint(path: str) -> None:
    """Unpickle the checkpoint ``path`` under ``weights_only=True``; raise if it is refused.

    mmengine loads checkpoints with ``torch.load``, which refuses unknown pickled globals
    (``weights_only=True``, torch >= 2.6; ``mmase.compat`` allow-lists the types mmengine writes).
    The tools call this first so a crafted file is refused with a message naming it, before a
    model or dataset is built. Tensors are memory-mapped, not read (``mmap=True``; files of the
    legacy non-zip format are read whole).

    Args:
        path (str): Local checkpoint file.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        UnsafeCheckpointError: the file's pickle needs globals outside the allowlist.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    try:
        try:
            torch.load(path, map_location='cpu', weights_only=True, mmap=True)
        except RuntimeError as err:
            if 'mmap' not in str(err):
                raise
            torch.load(path, map_location='cpu', weights_only=True)  # legacy format
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f'refusing to load checkpoint {path}: it holds pickled objects outside the '
            f'weights-only allowlist, which could run code when loaded ({_reason(err)}). Load '
            f'only checkpoints from a source you trust, and never with weights_only=False.'
        ) from None
