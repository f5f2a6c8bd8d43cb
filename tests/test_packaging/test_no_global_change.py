"""Importing mmase changes no mmseg / mmcv / mmengine behaviour (docs/faq.md: the registry names
mmase replaces: none).

Both tests run in a fresh interpreter: mmseg's modules are imported first (after mmase's
``mmcv.ops`` fallback alone, without which ``mmseg.models`` does not import on mmcv-lite), the
state recorded, then ``import mmase``.
"""
import os
import os.path as osp
import subprocess
import sys
import textwrap

import numpy as np
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


def _run(code: str) -> str:
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    proc = subprocess.run([sys.executable, '-c', PRELUDE + textwrap.dedent(code)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def test_an_mmseg_pipeline_loads_an_exif_rotated_jpeg_as_without_mmase(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 255, (40, 80, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF Orientation: rotate 90 degrees clockwise to display
    path = tmp_path / 'tagged.jpg'
    Image.fromarray(pixels).save(path, quality=95, exif=exif.tobytes())
    out = _run(f'''
        import numpy as np
        from mmcv.transforms import Compose
        pipeline = [dict(type='LoadImageFromFile')]  # an ordinary mmseg config's first step
        before = Compose(pipeline)(dict(img_path={str(path)!r}))['img']
        import mmase
        after = Compose(pipeline)(dict(img_path={str(path)!r}))['img']
        print('shapes', before.shape, after.shape, 'equal', np.array_equal(before, after))
        ours = Compose([dict(type='LoadMultiTaskImageFromFile')])(dict(img_path={str(path)!r}))
        print('mmase loader', ours['img'].shape)
    ''')
    assert 'shapes (80, 40, 3) (80, 40, 3) equal True' in out, out  # mmcv applies the tag
    assert 'mmase loader (40, 80, 3)' in out, out  # as stored, as the label maps are


def test_no_registry_name_is_replaced_or_shadowed():
    out = _run('''
        from mmengine.registry import MODELS

        def registries():
            """Every registry of the tree, by (name, scope)."""
            from mmengine import registry as root
            stack = [r for r in vars(root).values() if type(r).__name__ == 'Registry']
            while stack:
                reg = stack.pop()
                yield reg
                stack.extend(reg.children.values())

        before = {(r.name, r.scope): dict(r.module_dict) for r in registries()}
        import mmase
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
        added = len(set(MODELS.children['mmseg'].module_dict)
                    - set(before[('model', 'mmseg')]))
        print('changed', sorted(changed), 'shadowing', sorted(shadowing), 'models added', added)
    ''')
    assert "changed [] shadowing []" in out, out
    assert int(out.split('models added ')[1]) > 10, out  # mmase did register its models
