"""mmseg's own tool scripts, the copies its wheel ships (``mmseg/.mim/tools``), on an mmase config
through ``python -m mmase.apis.mmseg_tool mmseg::tools/...``.

One process runs them all (one torch import; ~1 min on 2 cores) on the session's tiny toy
checkpoint and a 4 + 6 image toy dataset (benchmark.py times from its sixth image on). ``get_flops.py`` of mmseg 1.2.2 cannot run on
mmengine 0.10.7 with any config (it passes both ``input_shape`` and ``inputs``): on an mmase
config it must stop at that same point, past its ``cfg.model.decode_head`` read, as it does on
mmseg's own FCN config.
"""
import json
import os.path as osp
import textwrap

from tool_helpers import TOY_CONFIG, run, tool_env

from mmase.datasets import make_toy_pascal_mt

DRIVER = textwrap.dedent('''
    import json, sys
    from mmase.apis import mmseg_tool
    results = []
    for argv in json.loads(sys.argv[1]):
        try:
            mmseg_tool.main(argv)
            results.append('ok')
        except SystemExit as error:
            results.append('ok' if error.code in (None, 0) else f'exit {error.code}')
        except BaseException as error:
            results.append(f'{type(error).__name__}: {error}')
    print('RESULTS ' + json.dumps(results))
''')


def test_mmseg_scripts_on_an_mmase_config(tmp_path, toy_run):
    import mmseg
    fcn = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', 'fcn',
                   'fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py')
    make_toy_pascal_mt(str(tmp_path / 'toy'), num_train=4, num_val=6, seed=0)
    config = tmp_path / 'tiny.py'  # the toy run's model (2 ViT blocks): some take no options
    config.write_text(textwrap.dedent(f'''
        _base_ = [{TOY_CONFIG!r}]
        model = dict(backbone=dict(arch=dict(num_layers=2), out_indices=[0, 1]))
    '''))
    out, browse = tmp_path / 'preds', tmp_path / 'browse' / 'not' / 'made'
    runs = [  # browse_dataset first: its visualizer is the process's first 'visualizer'
        ['mmseg::tools/misc/browse_dataset.py', str(config), '--output-dir', str(browse),
         '--not-show'],
        ['mmseg::tools/test.py', str(config), toy_run.checkpoint, '--work-dir',
         str(tmp_path / 'test'), '--out', str(out)],
        ['mmseg::tools/analysis_tools/benchmark.py', str(config), toy_run.checkpoint,
         '--work-dir', str(tmp_path / 'bench'), '--log-interval', '1'],
        ['mmseg::tools/analysis_tools/get_flops.py', str(config), '--shape', '64', '64'],
        ['mmseg::tools/analysis_tools/get_flops.py', fcn, '--shape', '64', '64'],
    ]
    proc = run(['-c', DRIVER, json.dumps(runs)], cwd=str(tmp_path),
               env=tool_env(MMASE_TOY_PASCAL_MT=tmp_path / 'toy'))
    results = json.loads(proc.stdout.split('RESULTS ')[-1])
    browse_run, test_out, bench, flops_mmase, flops_mmseg = results
    assert test_out == 'ok', test_out
    for task in ('semseg', 'human_parts', 'sal', 'normals', 'edge'):  # test.py --out DIR
        assert sorted(p.name for p in (out / task).iterdir()) == [
            f'toy_{i:06d}.png' for i in range(4, 10)], task
    assert bench == 'ok' and 'Done image [6  / 200], fps:' in proc.stdout, bench
    assert browse_run == 'ok', browse_run
    assert len(list((browse / 'vis_data' / 'vis_image').iterdir())) == 4  # the train split
    upstream = 'ValueError: "input_shape" and "inputs" cannot be both set.'
    assert flops_mmseg == upstream and flops_mmase == upstream, (flops_mmase, flops_mmseg)


def test_mmseg_tool_names_a_missing_packaged_script(tmp_path):
    proc = run(['-m', 'mmase.apis.mmseg_tool', 'mmseg::tools/none.py'], check=False,
               cwd=str(tmp_path))
    assert proc.returncode != 0 and 'mmseg::tools/none.py: no file' in proc.stderr
    assert osp.join('mmseg', '.mim', 'tools', 'none.py') in proc.stderr
