"""MultiTaskInferencer writes one figure and every task's raw map per image."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from api_helpers import ROOT, TINY_MODEL, toy_image
from mmengine.config import Config
from mmengine.runner.checkpoint import save_checkpoint

from mmase.apis import MultiTaskInferencer, init_model

NYUD_CONFIG = osp.join(ROOT, 'configs', 'toy', 'ase_vit-tiny_16-3-1-4_300it_toy-nyud-mt-64x64.py')


def test_figures_and_raw_maps(tiny_model, tmp_path):
    torch.set_num_threads(1)
    inferencer = MultiTaskInferencer(model=tiny_model.config, weights=tiny_model.checkpoint,
                                     device='cpu')
    images = [toy_image(40), toy_image(41)]
    result = inferencer(images, out_dir=str(tmp_path), batch_size=2)
    assert len(result['predictions']) == 2
    for path, pred in zip(images, result['predictions']):
        name = osp.splitext(osp.basename(path))[0]
        height, width = cv2.imread(path).shape[:2]
        figure = cv2.imread(str(tmp_path / 'vis' / f'{name}.png'))
        assert figure is not None and figure.shape[1] > 6 * width  # input + 5 task columns
        sem = cv2.imread(str(tmp_path / 'pred' / 'semseg' / f'{name}.png'), cv2.IMREAD_UNCHANGED)
        assert sem.shape == (height, width) and np.array_equal(sem, pred['semseg'][0])
        sal = cv2.imread(str(tmp_path / 'pred' / 'sal' / f'{name}.png'), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(sal, np.rint(pred['sal'][0] * 255).astype(np.uint8))
        rgb = cv2.imread(str(tmp_path / 'pred' / 'normals' / f'{name}.png'))[..., ::-1]
        expected = np.rint((pred['normals'].transpose(1, 2, 0) + 1) / 2 * 255)
        assert np.abs(rgb.astype(int) - expected).max() <= 0


def test_depth_png_is_uint16_millimetres(tmp_path):
    torch.set_num_threads(1)
    cfg = Config.fromfile(NYUD_CONFIG)
    cfg.merge_from_dict(TINY_MODEL)
    cfg.test_dataloader.dataset.data_root = osp.join(ROOT, cfg.test_dataloader.dataset.data_root)
    model = init_model(cfg, None)
    with torch.no_grad():  # a depth head that predicts ~1-3 m
        model.decode_heads['depth'].conv_seg.bias.fill_(2.0)
    ckpt = str(tmp_path / 'nyud.pth')
    save_checkpoint(dict(state_dict=model.state_dict(), meta={}), ckpt)
    inferencer = MultiTaskInferencer(model=cfg, weights=ckpt, device='cpu', tasks=['depth'])
    image = (np.random.RandomState(0).rand(40, 52, 3) * 255).astype(np.uint8)
    result = inferencer(image, out_dir=str(tmp_path / 'out'))
    depth = result['predictions'][0]['depth'][0]
    stored = cv2.imread(str(tmp_path / 'out' / 'pred' / 'depth' / '00000000.png'),
                        cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint16 and stored.shape == (40, 52)
    assert np.array_equal(stored, np.clip(np.rint(depth.astype(np.float64) * 1000), 0,
                                          65535).astype(np.uint16))
    assert stored.max() > 0
    npy = inferencer(image, out_dir=str(tmp_path / 'npy'), depth_format='npy')
    saved = np.load(str(tmp_path / 'npy' / 'pred' / 'depth' / '00000001.npy'))
    np.testing.assert_allclose(saved, npy['predictions'][0]['depth'][0])
    assert sorted(result['predictions'][0]) == ['depth']


def test_unknown_task_is_named(tiny_model):
    with pytest.raises(ValueError, match="'depth'"):
        MultiTaskInferencer(model=tiny_model.config, weights=tiny_model.checkpoint,
                            device='cpu', tasks=['depth'])


def test_image_demo_writes_figure_and_maps_quietly(tiny_model, tmp_path):
    import subprocess
    import sys
    from api_helpers import TOY_CONFIG
    out = tmp_path / 'demo'
    proc = subprocess.run(
        [sys.executable, 'demo/image_demo.py', toy_image(50), TOY_CONFIG, tiny_model.checkpoint,
         '--out-dir', str(out), '--device', 'cpu', '--cfg-options',
         'model.backbone.arch.num_layers=2', 'model.backbone.out_indices=[0,1]'],
        cwd=ROOT, capture_output=True, text=True, env=dict(__import__('os').environ,
                                                           OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Warning' not in proc.stderr, proc.stderr[-3000:]  # a quiet run
    assert (out / 'vis' / 'toy_000050.png').is_file()
    for task in ('semseg', 'human_parts', 'sal', 'normals', 'edge'):
        assert (out / 'pred' / task / 'toy_000050.png').is_file()
    missing = subprocess.run([sys.executable, 'demo/image_demo.py', str(tmp_path / 'no.jpg'),
                              TOY_CONFIG, tiny_model.checkpoint], cwd=ROOT, capture_output=True,
                             text=True)
    assert missing.returncode != 0 and 'no.jpg not found' in missing.stderr
