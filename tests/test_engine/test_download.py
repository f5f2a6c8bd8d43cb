"""Downloads land complete and checked, or not at all: a connection closed early or a digest
that does not match the name's hash prefix leaves nothing in the checkpoint cache."""
import hashlib
import http.server
import os
import threading

import pytest
import torch

from mmase.engine.checkpoint_check import fetch_checkpoint
from mmase.engine.download import hash_prefix_of

PAYLOAD = bytes(range(256)) * 40  # 10240 bytes


class Handler(http.server.BaseHTTPRequestHandler):
    """/short.pth announces 10240 bytes, sends 1000 and closes; anything else: PAYLOAD."""

    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD[:1000] if self.path.startswith('/short') else PAYLOAD)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown()
    httpd.server_close()


def cache_files(torch_home):
    folder = torch_home / 'hub' / 'checkpoints'
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def test_partial_download_is_never_cached(server, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path / 'hub'))
    with pytest.raises(OSError, match=rf'{server}/short\.pth.*incomplete download of '
                                      rf'{server}/short\.pth: 1000 of the 10240 bytes'):
        fetch_checkpoint(f'{server}/short.pth')
    assert cache_files(tmp_path) == []  # nothing the next run would trip on
    good = fetch_checkpoint(f'{server}/full.pth')
    assert open(good, 'rb').read() == PAYLOAD
    assert cache_files(tmp_path) == [os.path.basename(good)]


def test_hash_prefix_in_the_name_is_checked(server, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path / 'hub'))
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    assert hash_prefix_of(f'{server}/resnet18-{digest[:8]}.pth') == digest[:8]
    assert hash_prefix_of(f'{server}/ase_vit-tiny_16-3-1-4.pth') is None
    assert hash_prefix_of(f'{server}/iter-1.pth') is None  # too short to be a digest
    assert open(fetch_checkpoint(f'{server}/model-{digest[:10]}.pth'), 'rb').read() == PAYLOAD
    with pytest.raises(OSError, match=r'model-deadbeef\.pth is corrupt: its SHA-256 '
                                      rf'{digest} does not start with deadbeef'):
        fetch_checkpoint(f'{server}/model-deadbeef.pth')
    assert not any('deadbeef' in name for name in cache_files(tmp_path))
