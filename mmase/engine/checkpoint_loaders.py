"""mmengine's ``CheckpointLoader`` schemes, all through :func:`load_checkpoint_file`.

Importing this module (``mmase.engine`` does) replaces the loaders of mmengine's
``CheckpointLoader`` (local files, ``http(s)://``, ``s3://`` / ``petrel://``,
``torchvision://``, ``open-mmlab://``, ``mmcls://``, ``pavi://``) by ones that go through
:func:`~mmase.engine.checkpoint_check.load_checkpoint_file`; mmengine's own http loader uses
``torch.hub.load_state_dict_from_url``, which unpickles with ``weights_only=False``.
"""
import os.path as osp

from .checkpoint_check import fetch_checkpoint, is_remote, load_checkpoint_file

def _load_remote(filename: str, map_location=None):
    """Fetch ``filename`` into the cache (local rank 0 first in a distributed run) and load
    it."""
    from mmengine.dist import barrier, get_dist_info
    rank, world_size = get_dist_info()
    if rank == 0:
        local = fetch_checkpoint(filename)
    if world_size > 1:
        barrier()
        if rank > 0:
            local = fetch_checkpoint(filename)
    return load_checkpoint_file(local, map_location, name=filename)


def load_from_local(filename, map_location=None):
    """mmengine scheme ``''``: a local file, loaded by :func:`load_checkpoint_file`. mmengine
    falls back to this loader for every prefix it has no loader for, so a ``scheme://`` path
    here is read through its mmengine file backend (copied into the cache) first."""
    if is_remote(filename):
        return _load_remote(filename, map_location)
    return load_checkpoint_file(osp.expanduser(filename), map_location)


def load_from_http(filename, map_location=None, model_dir=None, progress=False):
    """mmengine schemes ``http://`` / ``https://``: downloaded into the cache, then loaded by
    :func:`load_checkpoint_file` (mmengine's own loader unpickles with weights_only=False).
    ``model_dir`` and ``progress`` are accepted for mmengine's signature and ignored."""
    return _load_remote(filename, map_location)


def load_from_backend(filename, map_location=None, backend=None):
    """mmengine schemes ``s3://`` / ``petrel://`` (any file backend): copied into the cache,
    then loaded by :func:`load_checkpoint_file`."""
    return _load_remote(filename, map_location)


def load_from_torchvision(filename, map_location=None):
    """mmengine schemes ``torchvision://`` / ``modelzoo://``: the torchvision URL, loaded as by
    :func:`load_from_http`."""
    from mmengine.runner.checkpoint import get_torchvision_models
    name = filename.split('://', 1)[1]
    return load_from_http(get_torchvision_models()[name], map_location)


def load_from_openmmlab(filename, map_location=None):
    """mmengine schemes ``open-mmlab://`` / ``openmmlab://``: the model zoo URL (or file under
    the mmengine home), loaded by :func:`load_checkpoint_file`."""
    from mmengine.runner.checkpoint import (_get_mmengine_home, get_deprecated_model_names,
                                            get_external_models)
    name = filename.split('://', 1)[1]
    name = get_deprecated_model_names().get(name, name)
    url = get_external_models()[name]
    if url.startswith(('http://', 'https://')):
        return load_from_http(url, map_location)
    return load_checkpoint_file(osp.join(_get_mmengine_home(), url), map_location,
                                name=filename)


def load_from_mmcls(filename, map_location=None):
    """mmengine scheme ``mmcls://``: the mmcls model zoo URL, loaded as by
    :func:`load_from_http`, keys converted as mmengine does."""
    from mmengine.runner.checkpoint import _process_mmcls_checkpoint, get_mmcls_models
    checkpoint = load_from_http(get_mmcls_models()[filename[len('mmcls://'):]], map_location)
    return _process_mmcls_checkpoint(checkpoint)


def load_from_pavi(filename, map_location=None):
    """mmengine scheme ``pavi://``: downloaded by pavi into a temporary folder, then loaded by
    :func:`load_checkpoint_file`."""
    from tempfile import TemporaryDirectory
    try:
        from pavi import modelcloud
    except ImportError:
        raise ImportError('Please install pavi to load checkpoint from modelcloud.')
    model = modelcloud.get(filename[len('pavi://'):])
    with TemporaryDirectory() as tmp_dir:
        local = osp.join(tmp_dir, model.name)
        model.download(local)
        return load_checkpoint_file(local, map_location, name=filename)


def install_safe_checkpoint_loaders() -> None:
    """Register the loaders above for every scheme mmengine's ``CheckpointLoader`` knows.

    Also replaces ``mmengine.runner.checkpoint.load_from_http``, which mmengine's other loaders
    call directly. Idempotent.
    """
    import mmengine.runner.checkpoint as mmengine_checkpoint
    from mmengine.runner.checkpoint import CheckpointLoader
    schemes = [('', load_from_local), (('http://', 'https://'), load_from_http),
               ([r'(\S+\:)?s3://', r'(\S+\:)?petrel://'], load_from_backend),
               (('modelzoo://', 'torchvision://'), load_from_torchvision),
               (('open-mmlab://', 'openmmlab://'), load_from_openmmlab),
               ('mmcls://', load_from_mmcls), ('pavi://', load_from_pavi)]
    for prefixes, loader in schemes:
        CheckpointLoader.register_scheme(prefixes, loader, force=True)
    mmengine_checkpoint.load_from_http = load_from_http
    mmengine_checkpoint.load_from_local = load_from_local


install_safe_checkpoint_loaders()
