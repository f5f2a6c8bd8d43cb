"""tools/analysis/constant_baseline.py: constants estimated on the train split, scored on val."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DATA = osp.join(ROOT, 'data', 'toy_pascal_mt')
CONFIG = osp.join(ROOT, 'configs', 'toy', 'ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py')


def semseg_path(img_id):
    for sub in ('VOC12', 'pascal-context'):
        path = osp.join(DATA, 'semseg', sub, img_id + '.png')
        if osp.exists(path):
            return path
    raise FileNotFoundError(img_id)


def test_constants_and_metrics(tmp_path):
    out = tmp_path / 'const.json'
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    proc = subprocess.run([sys.executable, 'tools/analysis/constant_baseline.py', CONFIG,
                           '--json', str(out)], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.load(open(out))
    ids = open(osp.join(DATA, 'ImageSets', 'Context', 'train.txt')).read().split()
    counts = np.zeros(256, np.int64)
    fg = total = 0
    for img_id in ids:
        label = np.array(Image.open(semseg_path(img_id)))
        counts += np.bincount(label.ravel(), minlength=256)
        sal = np.array(Image.open(osp.join(DATA, 'sal_distill', img_id + '.png'))) / 255 > 0.5
        fg, total = fg + sal.sum(), total + sal.size
    counts[255] = 0
    assert result['constants']['semseg'] == int(counts.argmax())
    assert abs(result['constants']['sal'] - fg / total) < 1e-9
    assert abs(np.linalg.norm(result['constants']['normals']) - 1) < 1e-6
    metrics = result['metrics']
    # a constant class map: IoU of that class only, averaged over the classes present
    assert 0 < metrics['semseg/mIoU'] < 100 / 3
    assert 0 < metrics['normals/mErr'] < 90
    assert 'multitask/delta_m' in metrics
