"""One safe reader for every checkpoint mmase loads, with messages naming the file.

Every way a checkpoint enters a run (``load_from``, ``--resume``, ``tools/test.py CHECKPOINT``,
``init_cfg=dict(type='Pretrained', checkpoint=...)``, an http(s) URL or a path on another
mmengine file backend) ends in :func:`load_checkpoint_file`:

1. remote files are first copied into a local cache (:func:`fetch_checkpoint`);
2. the file is inspected before anything is unpickled or inflated: empty, truncated, not a
   PyTorch checkpoint at all, or a zip archive declaring far more data than it holds (a zip
   bomb) are refused (:class:`InvalidCheckpointError`);
3. it is unpickled with ``torch.load(weights_only=True)``: only tensors, containers and the few
   mmengine types :mod:`mmase.compat` allow-lists; anything else is refused
   (:class:`UnsafeCheckpointError`), never retried with ``weights_only=False``;
   before that a zip checkpoint's bytes are checked against their stored CRC-32s
   (:mod:`mmase.engine.checkpoint_bytes`): a damaged file is refused, named.

Importing ``mmase.engine`` replaces the loaders of mmengine's ``CheckpointLoader`` by ones that
go through :func:`load_checkpoint_file` (:mod:`mmase.engine.checkpoint_loaders`).
"""
import hashlib
import os
import os.path as osp
import pickle
import zipfile
from typing import Optional

import torch

from .checkpoint_bytes import CheckpointBytesError, verify_zip_crcs
from .download import download_atomic

#: A zip checkpoint may declare at most this many times its file size as uncompressed data.
#: ``torch.save`` stores its entries uncompressed (ratio <= 1).
MAX_INFLATE_RATIO = 10

_ZIP_MAGIC = b'PK\x03\x04'
#: The first bytes of torch's legacy (pre-1.6) format: pickle protocol 2, the magic number.
_LEGACY_MAGIC = b'\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19'
#: Phrases of torch's weights-only errors that mean "this pickle wants a callable / class
#: outside the allowlist" (as opposed to a damaged pickle stream).
_UNSAFE_PHRASES = ('GLOBAL', 'allowlisted', 'Trying to call reduce', 'refusing getattr')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds pickled objects outside the ``weights_only`` allowlist."""


class InvalidCheckpointError(ValueError):
    """A checkpoint file is empty, truncated, damaged or not a PyTorch checkpoint."""


def _reason(err: Exception) -> str:
    """The informative lines of torch's ``weights_only`` error, without its advice to retry
    with ``weights_only=False``."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    keep = [line for line in lines
            if not line.startswith(('Weights only load failed', 'Check the documentation',
                                    'Please file an issue'))
            and 'weights_only' not in line]
    text = ' '.join(keep) or (lines[0] if lines else type(err).__name__)
    return text.replace('WeightsUnpickler error: ', '')


def is_remote(path: str) -> bool:
    """Whether ``path`` names a checkpoint by URL or file-backend prefix (``scheme://...``)."""
    return '://' in str(path)


def checkpoint_cache_dir() -> str:
    """Where remote checkpoints are copied: ``<torch hub dir>/checkpoints`` (``$TORCH_HOME``)."""
    return osp.join(torch.hub.get_dir(), 'checkpoints')


def fetch_checkpoint(path: str) -> str:
    """The local file of checkpoint ``path``.

    A local path is returned as is (``~`` expanded). An ``http(s)://`` URL is downloaded, any
    other ``scheme://`` path is read through its mmengine file backend, into
    :func:`checkpoint_cache_dir` as ``<hash of the URL>-<file name>`` (written to a temporary
    file and renamed only when complete, so neither a concurrent process nor a later run reads
    a partial copy; an http(s) download is also checked against ``Content-Length`` and the
    SHA-256 prefix its file name may carry, :mod:`mmase.engine.download`); a copy already
    there is reused. Nothing is unpickled here.

    Raises:
        OSError: the download or the read failed; the message names ``path``.
    """
    path = str(path)
    if not is_remote(path):
        return osp.expanduser(path)
    digest = hashlib.sha256(path.encode('utf-8')).hexdigest()[:16]
    name = osp.basename(path.split('?')[0].rstrip('/')) or 'checkpoint.pth'
    cached = osp.join(checkpoint_cache_dir(), f'{digest}-{name}')
    if osp.isfile(cached):
        return cached
    os.makedirs(osp.dirname(cached), exist_ok=True)
    try:
        if path.startswith(('http://', 'https://')):
            download_atomic(path, cached)  # complete (Content-Length, hash in the name) or absent
        else:
            from mmengine.fileio import get_file_backend

            from .atomic_local_backend import write_atomic
            write_atomic(get_file_backend(path).get(path), cached)
    except Exception as err:
        raise OSError(f'cannot fetch checkpoint {path} into {cached}: '
                      f'{type(err).__name__}: {err}') from err
    return cached


def inspect_checkpoint_file(path: str, name: Optional[str] = None) -> str:
    """Check what the file ``path`` is before it is unpickled; return ``'zip'`` or ``'legacy'``.

    Reads only the first bytes and, for a zip archive, its central directory: the declared
    sizes are compared with the file before anything is inflated.

    Args:
        path (str): Local file.
        name (str, optional): How messages name the checkpoint (e.g. its URL). Defaults to
            ``path``.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        InvalidCheckpointError: empty, truncated, not a PyTorch checkpoint, or a zip archive
            declaring more than :data:`MAX_INFLATE_RATIO` times its size.
    """
    name = name or path
    shown = name if name == path else f'{name} (cached as {path})'
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {name} does not exist')
    size = osp.getsize(path)
    if size == 0:
        raise InvalidCheckpointError(f'cannot load checkpoint {shown}: the file is empty '
                                     f'(0 bytes)')
    with open(path, 'rb') as f:
        head = f.read(len(_LEGACY_MAGIC))
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                infos = archive.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as err:
            raise InvalidCheckpointError(
                f'cannot load checkpoint {shown}: the file is truncated or damaged: it starts '
                f'like a PyTorch (zip) checkpoint but its zip directory cannot be read ({err}; '
                f'{size} bytes)') from None
        end = max((i.header_offset + i.compress_size for i in infos), default=0)
        if end > size:
            raise InvalidCheckpointError(
                f'cannot load checkpoint {shown}: the file is truncated: its zip directory '
                f'places data up to byte {end} but the file has {size} bytes')
        declared = sum(i.file_size for i in infos)
        if declared > MAX_INFLATE_RATIO * size:
            raise InvalidCheckpointError(
                f'cannot load checkpoint {shown}: its zip entries declare {declared} bytes of '
                f'uncompressed data in a {size}-byte file (more than {MAX_INFLATE_RATIO}x; '
                f'torch.save writes uncompressed entries): refusing to inflate it (a zip bomb?)')
        return 'zip'
    if head == _LEGACY_MAGIC:
        return 'legacy'
    raise InvalidCheckpointError(
        f'cannot load checkpoint {shown}: not a PyTorch checkpoint (neither the zip format of '
        f'torch.save nor its legacy format; the file starts with {head[:8]!r})')


def load_checkpoint_file(path: str, map_location='cpu', mmap: bool = False,
                         name: Optional[str] = None):
    """Load the local checkpoint file ``path`` safely; see the module docstring.

    Args:
        path (str): Local file (see :func:`fetch_checkpoint` for remote ones).
        map_location: As for ``torch.load``. Defaults to ``'cpu'``.
        mmap (bool): Memory-map the tensors of a zip checkpoint instead of reading them.
            Defaults to False.
        name (str, optional): How messages name the checkpoint. Defaults to ``path``.

    Returns:
        The unpickled object (usually a dict with ``state_dict`` and ``meta``).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        InvalidCheckpointError: see :func:`inspect_checkpoint_file`; also a damaged pickle or
            tensor data.
        UnsafeCheckpointError: the pickle needs globals outside the allowlist.
    """
    name = name or path
    shown = name if name == path else f'{name} (cached as {path})'
    fmt = inspect_checkpoint_file(path, name)
    if fmt == 'zip':  # torch.load never checks the stored CRC-32s
        try:
            verify_zip_crcs(path, shown)
        except CheckpointBytesError as err:
            raise InvalidCheckpointError(str(err)) from None
    if fmt == 'zip' and mmap:
        with zipfile.ZipFile(path) as archive:  # mmap needs uncompressed entries
            mmap = all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())
    try:
        return torch.load(path, map_location=map_location, weights_only=True,
                          mmap=mmap and fmt == 'zip')
    except pickle.UnpicklingError as err:
        text = str(err)
        if any(phrase in text for phrase in _UNSAFE_PHRASES):
            raise UnsafeCheckpointError(
                f'refusing to load checkpoint {shown}: it holds pickled objects outside the '
                f'weights-only allowlist, which could run code when loaded ({_reason(err)}). '
                f'Load only checkpoints from a source you trust, and never with '
                f'weights_only=False.') from None
        raise InvalidCheckpointError(
            f'cannot load checkpoint {shown}: the file is truncated or damaged (unreadable '
            f'pickle: {_reason(err)})') from None
    except (EOFError, RuntimeError, ValueError, OSError, KeyError, IndexError,
            AttributeError, TypeError, zipfile.BadZipFile) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InvalidCheckpointError(
            f'cannot load checkpoint {shown}: the file is truncated or damaged '
            f'({type(err).__name__}: {first})') from None


def check_checkpoint(path: str) -> None:
    """Fetch (when remote) and load the checkpoint ``path`` as :func:`load_checkpoint_file`
    does, tensors memory-mapped; raise if it is refused.

    The tools call this first so a bad or crafted file is refused with a message naming it,
    before a model or dataset is built (a remote file stays in the cache for the real load).

    Args:
        path (str): Local checkpoint file, http(s) URL or mmengine backend path.

    Raises:
        FileNotFoundError: a local ``path`` is not a file.
        OSError: a remote ``path`` cannot be fetched.
        InvalidCheckpointError: empty, truncated, damaged, not a checkpoint, or a zip bomb.
        UnsafeCheckpointError: the file's pickle needs globals outside the allowlist.
    """
    load_checkpoint_file(fetch_checkpoint(path), map_location='cpu', mmap=True, name=str(path))


def config_checkpoints(cfg) -> list:
    """``(field, path)`` of every checkpoint ``cfg.model`` names: ``pretrained`` strings
    (``.safetensors`` files excepted: they hold no pickle) and ``init_cfg`` entries of type
    ``'Pretrained'``, e.g. ``('model.backbone.pretrained', 'vit.pth')``."""
    found = []

    def walk(node, path):
        if isinstance(node, dict):
            if node.get('type') == 'Pretrained' and isinstance(node.get('checkpoint'), str):
                found.append((f'{path}.checkpoint', node['checkpoint']))
            for key, value in node.items():
                if key == 'pretrained' and isinstance(value, str) and \
                        not value.endswith('.safetensors'):
                    found.append((f'{path}.pretrained', value))
                else:
                    walk(value, f'{path}.{key}')
        elif isinstance(node, (list, tuple)):
            for index, value in enumerate(node):
                walk(value, f'{path}.{index}')

    walk(cfg.get('model'), 'model')
    return found


def check_config_checkpoints(cfg) -> None:
    """:func:`check_checkpoint` for every checkpoint :func:`config_checkpoints` finds, the
    message prefixed with the config field (``model.backbone.pretrained: refusing to load
    checkpoint ...``), so a model's pretrained weights are refused as ``load_from`` is, before
    anything is built."""
    for field, path in config_checkpoints(cfg):
        try:
            check_checkpoint(path)
        except (InvalidCheckpointError, UnsafeCheckpointError, FileNotFoundError) as err:
            raise type(err)(f'{field}: {err}') from None
