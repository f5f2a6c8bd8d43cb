"""The mmase wheel in a fresh environment, used from a project outside the repository.

One slow test (about 80 s on an idle 2-core machine, 2 min on a busy one: the wheel 5 s, the
environment 10 s, then three processes that each import torch). What is fresh, and what is borrowed:

- built here: the wheel (``pip wheel --no-deps`` of a copy of the sources, so the repository
  gets no ``build/`` or ``mmase/.mim``) and a virtual environment without pip or setuptools;
- installed by pip into it: ``setuptools==84.2.1`` first (what torch's ``setuptools>=77.0.3``
  gets today: no ``pkg_resources``), then the mmase wheel, whose requirements pip resolves;
- borrowed: the third-party distributions of the test's own environment (torch, mmengine,
  mmseg, ...), linked one by one into a folder the new environment reads through a ``.pth`` file
  — every one but mmase, setuptools and ``pkg_resources``. pip sees them as installed, so
  resolving the wheel's requirements still runs (it must downgrade setuptools below 81), and
  mmase, its configs (``mmase/.mim``) and its tools come from the wheel alone.
"""
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig
import textwrap

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: What a wheel is built from (``setup.py`` lays out ``mmase/.mim`` from these).
SOURCES = ('mmase', 'configs', 'tools', 'demo', 'requirements', 'setup.py', 'MANIFEST.in',
           'README.md', 'model-index.yml')
#: Left out of the borrowed distributions: what the wheel must bring or pip must resolve.
NOT_BORROWED = ('mmase', '__editable__', 'setuptools', 'pkg_resources', '_distutils_hack',
                'distutils-precedence.pth', '__pycache__')
TOY = 'ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py'
#: 2 ViT blocks, 2 iterations, checkpoint and validation at the end.
TINY = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
        'param_scheduler.0.end=1', 'param_scheduler.1.begin=1', 'param_scheduler.1.end=2',
        'model.backbone.arch.num_layers=2', 'model.backbone.out_indices=[0,1]']


def _run(cmd, cwd, env=None, timeout=300):
    """Run ``cmd``; without ``env``, in this environment less ``PYTHONPATH`` (a repository on
    it, e.g. ``PYTHONPATH=. pytest``, shows pip its ``mmase.egg-info`` as installed mmase)."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (f'{cmd} exited with {proc.returncode}\n'
                                  + proc.stdout[-3000:] + proc.stderr[-5000:])
    return proc.stdout


def _fresh_env(tmp_path):
    """A venv whose site-packages holds nothing of mmase or setuptools, the borrowed rest
    linked beside it; returns its python."""
    env_dir = tmp_path / 'env'
    _run([sys.executable, '-m', 'venv', '--without-pip', str(env_dir)], cwd=tmp_path)
    python = str(env_dir / 'bin' / 'python')
    borrowed = tmp_path / 'borrowed'
    borrowed.mkdir()
    ours = sysconfig.get_paths()['purelib']
    for name in os.listdir(ours):
        if not name.startswith(NOT_BORROWED):
            os.symlink(osp.join(ours, name), borrowed / name)
    env_site = _run([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                    cwd=tmp_path).strip()
    with open(osp.join(env_site, 'zz_borrowed.pth'), 'w') as f:
        f.write(str(borrowed) + '\n')
    return python


def test_wheel_in_a_fresh_environment(tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    for name in SOURCES:
        path = osp.join(ROOT, name)
        if osp.isdir(path):
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns(
                '__pycache__', '*.pyc', '.mim'))
        else:
            shutil.copy(path, src / name)
    pip = [sys.executable, '-m', 'pip']
    _run(pip + ['wheel', '--no-deps', '--no-build-isolation', '-q', str(src), '-w',
                str(tmp_path / 'wheels')], cwd=tmp_path)
    wheel = str(next((tmp_path / 'wheels').glob('mmase-*.whl')))
    python = _fresh_env(tmp_path)
    _run(pip + ['--python', python, 'install', '-q', 'setuptools==84.2.1'], cwd=tmp_path)
    _run(pip + ['--python', python, 'install', '-q', wheel], cwd=tmp_path)

    project = tmp_path / 'project'  # a user's project: no mmase sources, no data/ folder
    project.mkdir()
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               MMASE_TOY_PASCAL_MT=str(tmp_path / 'toy'))
    env.pop('PYTHONPATH', None)
    (project / 'on_mmseg.py').write_text("_base_ = ['mmseg::_base_/default_runtime.py']\n")
    (project / 'my_toy.py').write_text(textwrap.dedent(f'''
        _base_ = ['mmase::toy/{TOY}']
        train_cfg = dict(max_iters=2, val_interval=2)
    '''))
    (project / 'ase.py').write_text(
        "_base_ = ['mmase::ase/ase_vit-s16_16-3-1-4_40k_pascal-mt-512x512.py']\n")
    out = _run([python, '-c', textwrap.dedent('''
        import setuptools
        from mmengine import Config
        print('setuptools', setuptools.__version__)
        print('mmseg scope', Config.fromfile('on_mmseg.py').default_scope)  # before mmase
        import runpy, sys  # a clone's tools/train.py must import the installed mmase
        sys.argv = ['train.py', '--help']
        try:
            runpy.run_path(CLONE_TRAIN, run_name='__main__')
        except SystemExit:
            pass
        import mmase
        print('mmase at', mmase.__file__)
        cfg = Config.fromfile('my_toy.py')
        print('toy', cfg.model.type, cfg.train_dataloader.dataset.data_root)
        print('ase', Config.fromfile('ase.py').model.backbone.type)
        from mmase.apis import mmseg_tool  # the shipped generator, where the user says
        mmseg_tool.main(['mmase::tools/misc/make_toy_pascal_mt.py', '--out', TOY_DIR,
                         '--num-train', '4', '--num-val', '4'])
    '''.replace('TOY_DIR', repr(str(tmp_path / 'toy'))).replace(
        'CLONE_TRAIN', repr(osp.join(ROOT, 'tools', 'train.py'))))], cwd=project, env=env)
    major = int(out.split('setuptools ')[1].split('.')[0])
    assert 77 <= major < 81, out
    assert 'mmseg scope mmseg' in out
    assert f'mmase at {tmp_path}' in out and str(ROOT) not in out.split('mmase at')[1]
    assert f'toy MultiTaskEncoderDecoder {tmp_path / "toy"}' in out
    assert 'ase ASEViT' in out

    tool = [python, '-m', 'mmase.apis.mmseg_tool']
    assert sorted(os.listdir(tmp_path / 'toy' / 'ImageSets' / 'Context')) == [
        'train.txt', 'val.txt']
    _run(tool + ['mmase::tools/train.py', 'my_toy.py', '--work-dir', 'work',
                 '--cfg-options'] + TINY, cwd=project, env=env)
    assert osp.isfile(project / 'work' / 'iter_2.pth')
    _run(tool + ['mmase::tools/test.py', f'mmase::toy/{TOY}', 'work/iter_2.pth', '--work-dir',
                 'work', '--cfg-options'] + TINY[-2:], cwd=project, env=env)
    assert osp.isfile(project / 'work' / 'metrics_test.json')
