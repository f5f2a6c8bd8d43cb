"""The compatibility layer: mmcv.ops fallback only when needed, safe mmengine checkpoints."""
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import mmase.compat as compat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env["PYTHONWARNINGS"] = "ignore"
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=120)


def test_fallback_matches_installed_mmcv():
    try:
        import mmcv._ext  # noqa: F401
        has_compiled = True
    except ImportError:
        has_compiled = False
    assert compat.MMCV_OPS_FALLBACK is (not has_compiled)
    import mmcv.ops
    assert getattr(mmcv.ops, 'MMASE_FALLBACK', False) is (not has_compiled)


def test_real_ops_are_kept_when_importable():
    # Simulate a full mmcv build: an importable mmcv.ops must be left untouched.
    out = run_python('''
        import sys, types
        fake = types.ModuleType('mmcv.ops')
        fake.point_sample = fake.sigmoid_focal_loss = 'real'
        def missing(name):
            if name.startswith('__'):
                raise AttributeError(name)
            raise ModuleNotFoundError(name)
        fake.__getattr__ = missing
        import mmcv; sys.modules['mmcv.ops'] = fake; mmcv.ops = fake
        import mmase.compat as c
        import mmcv.ops
        print(c.MMCV_OPS_FALLBACK, mmcv.ops.point_sample)
    ''')
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['False', 'real']


@pytest.mark.skipif(not compat.MMCV_OPS_FALLBACK, reason='full mmcv installed')
def test_fallback_point_sample_and_focal_loss_by_hand():
    from mmcv.ops import point_sample, sigmoid_focal_loss
    img = torch.arange(4.0).view(1, 1, 2, 2)  # [[0, 1], [2, 3]]
    pts = torch.tensor([[[0.25, 0.25], [0.75, 0.75], [0.5, 0.5]]])
    out = point_sample(img, pts, align_corners=False)
    torch.testing.assert_close(out, torch.tensor([[[0.0, 3.0, 1.5]]]))
    logits = torch.tensor([[0.0, 1.0]])
    target = torch.tensor([1])
    p = torch.sigmoid(logits)
    by_hand = (0.75 * p[0, 0] ** 2 * -torch.log(1 - p[0, 0])
               + 0.25 * (1 - p[0, 1]) ** 2 * -torch.log(p[0, 1]))
    torch.testing.assert_close(sigmoid_focal_loss(logits, target, 2.0, 0.25, None, 'mean'), by_hand)
    # optional compiled ops raise ModuleNotFoundError, which mmseg's guards expect
    with pytest.raises(ModuleNotFoundError, match='CrissCrossAttention'):
        from mmcv.ops import CrissCrossAttention  # noqa: F401


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    from mmengine.runner.checkpoint import save_checkpoint
    hub = MessageHub.get_instance('compat_test')
    hub.update_scalar('train/loss', 0.5)
    meta = dict(epoch=np.int64(1), iter=np.int64(10), seed=np.uint32(3),
                message_hub=hub.state_dict(), arr=np.arange(3.0))
    path = str(tmp_path / 'ckpt.pth')
    save_checkpoint(dict(meta=meta, state_dict={'w': torch.ones(2)}), path)
    ckpt = torch.load(path, map_location='cpu')  # default weights_only=True
    assert int(ckpt['meta']['iter']) == 10
    assert isinstance(ckpt['meta']['message_hub']['log_scalars']['train/loss'], HistoryBuffer)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def test_crafted_checkpoint_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': _Evil(str(marker))}, path)
    with pytest.raises(pickle.UnpicklingError, match='system'):
        torch.load(path, map_location='cpu')
    from mmengine.runner import load_checkpoint
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(torch.nn.Linear(1, 1), str(path), map_location='cpu')
    assert not marker.exists()


def test_checkpoint_loads_in_a_fresh_process(tmp_path):
    # A new process has not instantiated HistoryBuffer yet (its statistics table is empty).
    from mmengine.runner.checkpoint import save_checkpoint
    hub = MessageHub.get_instance('compat_fresh')
    hub.update_scalar('train/loss', 0.25)
    path = str(tmp_path / 'ckpt.pth')
    save_checkpoint(dict(meta=dict(message_hub=hub.state_dict()), state_dict={}), path)
    out = run_python(f'''
        import mmase.compat, torch
        ckpt = torch.load({path!r}, map_location='cpu')
        print(ckpt['meta']['message_hub']['log_scalars']['train/loss'].current())
    ''')
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == '0.25'


def test_restricted_getattr_refuses_other_attributes(tmp_path):
    import pickle as pkl

    class Sneaky:
        def __reduce__(self):
            return (getattr, (np.ndarray, 'tofile'))

    path = tmp_path / 'sneaky.pth'
    torch.save({'x': Sneaky()}, path)
    with pytest.raises(pkl.UnpicklingError, match="refusing getattr"):
        torch.load(path, map_location='cpu')
