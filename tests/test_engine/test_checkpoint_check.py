"""check_checkpoint: the tools' up-front refusal of crafted checkpoints."""
import os

import numpy as np
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


# ---------------------------------------------------------------------------------------------
# Checkpoints by URL / file backend (issue 15, item 1) and bounded, clear reads (item 3).


@pytest.fixture()
def http_root(tmp_path, monkeypatch):
    """A folder served over http on 127.0.0.1 (a thread); yields (folder, base URL). Remote
    checkpoints are cached under a temporary $TORCH_HOME."""
    import functools
    import http.server
    import threading
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    root = tmp_path / 'served'
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


def test_url_checkpoint_is_refused_by_every_loader_and_nothing_runs(http_root, tmp_path):
    from mmengine.model.weight_init import PretrainedInit
    from mmengine.runner import load_checkpoint
    root, base = http_root
    marker = tmp_path / 'pwned'
    torch.save({'state_dict': {}, 'meta': _Evil(str(marker))}, root / 'evil.pth')
    url = f'{base}/evil.pth'
    pattern = (rf'refusing to load checkpoint {url} \(cached as .*evil\.pth\): '
               r'.*GLOBAL posix\.system')
    with pytest.raises(UnsafeCheckpointError, match=pattern):
        check_checkpoint(url)
    with pytest.raises(UnsafeCheckpointError, match=pattern):  # load_from, --resume
        load_checkpoint(torch.nn.Linear(1, 1), url, map_location='cpu')
    with pytest.raises(UnsafeCheckpointError, match=pattern):  # init_cfg type='Pretrained'
        PretrainedInit(checkpoint=url)(torch.nn.Linear(1, 1))
    assert not marker.exists()


def test_url_checkpoint_loads_through_the_cache(http_root):
    from mmengine.runner import load_checkpoint
    root, base = http_root
    linear = torch.nn.Linear(2, 1)
    torch.save({'state_dict': {'weight': torch.full((1, 2), 3.0), 'bias': torch.ones(1)}},
               root / 'good.pth')
    load_checkpoint(linear, f'{base}/good.pth', map_location='cpu')
    assert linear.weight.tolist() == [[3.0, 3.0]]
    (root / 'good.pth').unlink()  # the second load reads the cached copy
    load_checkpoint(torch.nn.Linear(2, 1), f'{base}/good.pth', map_location='cpu')


def test_file_backend_checkpoint_is_refused(tmp_path, monkeypatch):
    """A path on any mmengine file backend (here one registered for ``memtest://``) is copied
    into the cache and loaded as a local file."""
    from mmengine.fileio import BaseStorageBackend, register_backend
    from mmengine.runner import load_checkpoint
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': _Evil(str(marker))}, evil)

    class MemBackend(BaseStorageBackend):
        def get(self, filepath):
            return evil.read_bytes()

        def get_text(self, filepath, encoding='utf-8'):
            raise NotImplementedError

    register_backend('memtest', MemBackend, force=True, prefixes='memtest')
    with pytest.raises(UnsafeCheckpointError, match=r'memtest://bucket/evil\.pth'):
        load_checkpoint(torch.nn.Linear(1, 1), 'memtest://bucket/evil.pth')
    assert not marker.exists()


def _zip_bomb(path, data_bytes):
    """A torch zip checkpoint whose tensor entry is deflated: ``data_bytes`` of zeros."""
    import zipfile
    plain = str(path) + '.plain'
    torch.save({'w': torch.zeros(data_bytes // 4)}, plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, 'w') as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename),
                         compress_type=zipfile.ZIP_DEFLATED)
    os.remove(plain)


def test_zip_bomb_is_refused_before_inflating(tmp_path, monkeypatch):
    from mmase.engine import InvalidCheckpointError
    path = tmp_path / 'bomb.pth'
    _zip_bomb(path, 40_000_000)  # ~40 KB on disk
    assert path.stat().st_size < 100_000
    inflated = []
    real_load = torch.load
    monkeypatch.setattr(torch, 'load', lambda *a, **k: inflated.append(a) or real_load(*a, **k))
    with pytest.raises(InvalidCheckpointError,
                       match=rf'{path}: its zip entries declare 4000\d+ bytes .* zip bomb'):
        check_checkpoint(str(path))
    assert not inflated  # refused from the zip directory alone


def test_empty_random_and_truncated_files_are_named(tmp_path):
    from mmase.engine import InvalidCheckpointError
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    noise = tmp_path / 'noise.pth'
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    good = tmp_path / 'good.pth'
    torch.save({'w': torch.ones(1000)}, good)
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(good.read_bytes()[:good.stat().st_size // 2])
    legacy = tmp_path / 'legacy.pth'
    torch.save({'w': torch.ones(1000)}, legacy, _use_new_zipfile_serialization=False)
    cut_legacy = tmp_path / 'cut_legacy.pth'
    cut_legacy.write_bytes(legacy.read_bytes()[:-1000])  # in the tensor data
    cases = {empty: r'the file is empty \(0 bytes\)',
             noise: r'not a PyTorch checkpoint',
             cut: r'the file is truncated or damaged',
             cut_legacy: r'the file is truncated or damaged'}
    for path, pattern in cases.items():
        with pytest.raises(InvalidCheckpointError, match=rf'checkpoint {path}: {pattern}') as info:
            check_checkpoint(str(path))
        assert 'could run code' not in str(info.value)
        assert 'weights_only=False' not in str(info.value)


def test_config_checkpoints_are_found_and_named():
    from mmengine.config import Config

    from mmase.engine import check_config_checkpoints
    from mmase.engine.checkpoint_check import config_checkpoints
    cfg = Config(dict(model=dict(
        backbone=dict(pretrained='vit.pth'),
        decode_heads=dict(semseg=dict(init_cfg=dict(type='Pretrained', checkpoint='h.pth'))),
        neck=dict(pretrained='w.safetensors'))))
    assert config_checkpoints(cfg) == [('model.backbone.pretrained', 'vit.pth'),
                                       ('model.decode_heads.semseg.init_cfg.checkpoint', 'h.pth')]
    with pytest.raises(FileNotFoundError,
                       match=r'^model\.backbone\.pretrained: checkpoint vit\.pth does not exist'):
        check_config_checkpoints(cfg)
