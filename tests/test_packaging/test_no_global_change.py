"""Importing mmase changes no mmseg / mmcv / mmengine behaviour (docs/faq.md: the registry names
mmase replaces: none).

Both read one fresh interpreter's report: mmseg's modules are imported first (after mmase's
``mmcv.ops`` fallback alone, without which ``mmseg.models`` does not import on mmcv-lite), the
state recorded, then ``import mmase``.
"""
import os
import os.path as osp
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: mmase's mmcv.ops fallback, loaded from its file without importing the mmase package.
PRELUDE = textwrap.dedent(f'''
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location(
        '_mmase_compat_alone', {osp.join(ROOT, 'mmase', 'compat.py')!r})
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    import mmseg.datasets, mmseg.engine, mmseg.evaluation, mmseg.models, mmseg.visualization
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    assert 'mmase' not in sys.modules
''')


SCRIPT = textwrap.dedent('''
    import sys
    import numpy as np
    from mmcv.transforms import Compose
    from mmengine import registry as root

    def registries():
        """Every registry of the tree."""
        stack = [r for r in vars(root).values() if isinstance(r, root.Registry)]
        while stack:
            reg = stack.pop()
            yield reg
            stack.extend(reg.children.values())

    path = sys.argv[1]
    pipeline = [dict(type='LoadImageFromFile')]  # an ordinary mmseg config's first step
    before_img = Compose(pipeline)(dict(img_path=path))['img']
    before = {(r.name, r.scope): dict(r.module_dict) for r in registries()}
    import mmase
    after_img = Compose(pipeline)(dict(img_path=path))['img']
    print('shapes', before_img.shape, after_img.shape, 'equal',
          np.array_equal(before_img, after_img))
    ours = Compose([dict(type='LoadMultiTaskImageFromFile')])(dict(img_path=path))
    print('mmase loader', ours['img'].shape)
    changed, shadowing = [], []
    for reg in registries():
        old = before.get((reg.name, reg.scope), {})
        changed += [f'{reg.scope}.{reg.name}.{k}' for k, v in old.items()
                    if reg.module_dict.get(k) is not v]
        for key in set(reg.module_dict) - set(old):
            parent = reg.parent
            while parent is not None:
                if key in before.get((parent.name, parent.scope), {}):
                    shadowing.append(f'{reg.scope}.{reg.name}.{key}')
                parent = parent.parent
    added = set(root.MODELS.children['mmseg'].module_dict) - set(before[('model', 'mmseg')])
    print('changed', sorted(changed), 'shadowing', sorted(shadowing), 'models added',
          len(added))
''')


@pytest.fixture(scope='module')
def report(tmp_path_factory) -> str:
    """The script's output on a JPEG of 40x80 pixels tagged "rotate 90 degrees clockwise"."""
    pixels = np.random.default_rng(0).integers(0, 255, (40, 80, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF Orientation: rotate 90 degrees clockwise to display
    path = tmp_path_factory.mktemp('exif') / 'tagged.jpg'
    Image.fromarray(pixels).save(path, quality=95, exif=exif.tobytes())
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    proc = subprocess.run([sys.executable, '-c', PRELUDE + SCRIPT, str(path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def test_an_mmseg_pipeline_loads_an_exif_rotated_jpeg_as_without_mmase(report):
    assert 'shapes (80, 40, 3) (80, 40, 3) equal True' in report, report  # mmcv applies it
    assert 'mmase loader (40, 80, 3)' in report, report  # as stored, as the label maps are


def test_no_registry_name_is_replaced_or_shadowed(report):
    assert 'changed [] shadowing []' in report, report
    assert int(report.split('models added ')[1]) > 10, report  # mmase did register its models
