"""``python -m mmase.apis.mmseg_tool`` runs an mmseg-style tool script on an mmase config."""
import os
import subprocess
import sys
import textwrap

import pytest

from api_helpers import ROOT, TOY_CONFIG

#: What mmseg's tools/misc/print_config.py --graph does: import mmseg first, then init_model.
MMSEG_STYLE_TOOL = textwrap.dedent('''
    import sys
    from mmengine import Config
    from mmseg.apis import init_model
    cfg = Config.fromfile(sys.argv[1])
    cfg.merge_from_dict({'model.backbone.arch.num_layers': 2,
                         'model.backbone.out_indices': [0, 1]})
    model = init_model(cfg, device='cpu')
    print('built', type(model).__name__, len(model.tasks))
''')


def test_runs_an_mmseg_tool_that_imports_mmseg_first(tmp_path):
    script = tmp_path / 'print_graph.py'
    script.write_text(MMSEG_STYLE_TOOL)
    proc = subprocess.run([sys.executable, '-m', 'mmase.apis.mmseg_tool', str(script),
                           TOY_CONFIG], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'built MultiTaskEncoderDecoder 5' in proc.stdout
    missing = subprocess.run([sys.executable, '-m', 'mmase.apis.mmseg_tool',
                              str(tmp_path / 'none.py')], cwd=ROOT, capture_output=True,
                             text=True)
    assert missing.returncode != 0 and 'none.py not found' in missing.stderr


def test_packaged_path_resolves_scope_paths(tmp_path):
    import mmseg

    from mmase.apis.mmseg_tool import packaged_path
    assert packaged_path('configs/x.py') == 'configs/x.py'  # a plain path, unchanged
    assert packaged_path('mmseg::tools/test.py') == os.path.join(
        os.path.dirname(mmseg.__file__), '.mim', 'tools', 'test.py')
    with pytest.raises(FileNotFoundError, match=r"mmase::toy/none\.py: no file .*"
                                                r"\.mim/configs/toy/none\.py"):
        packaged_path('mmase::toy/none.py', 'configs')
    with pytest.raises(FileNotFoundError, match="no installed package 'nopkg'"):
        packaged_path('nopkg::tools/x.py')
