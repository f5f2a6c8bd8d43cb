"""A run killed while saving resumes with ``tools/train.py --resume`` to the uninterrupted weights.

Three tiny runs of the toy config (2 ViT blocks, 4 iterations, checkpoint and validation every 2,
``max_keep_ckpts=1`` as in the toy config), with dropout 0.1 in two heads (as the full-size
configs) so that torch's random generator matters:

A. uninterrupted, 4 iterations;
B. the same, SIGKILLed while its checkpoint of iteration 4 is being written (between the write
   of the temporary file and its rename);
C. B's work dir resumed with ``--resume``.

C's ``iter_4.pth`` must equal A's bit for bit (weights, buffers, optimizer state). It needs the
two hooks the runtime should list (see docs/distributed.md): ``SafeCheckpointHook`` (mmengine's
``CheckpointHook`` deletes ``iter_2.pth`` before writing ``iter_4.pth``: B would be left with no
checkpoint) and ``PerIterSeedHook`` (otherwise the dropout masks after the resume differ:
59 of 94 tensors differed when measured).
"""
import json
import os
import os.path as osp
import signal

import pytest
import torch
from tool_helpers import TINY, TOY_CONFIG, run, tool_env, toy_ids, write_split

RESUME_CONFIG = '''
_base_ = [{toy!r}]
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook'))
custom_hooks = [dict(type='SaveMetricsHook'), dict(type='CheckFiniteLossHook'),
                dict(type='PerIterSeedHook')]
model = dict(decode_heads=dict(semseg=dict(dropout_ratio=0.1), normals=dict(dropout_ratio=0.1)))
'''
KILLED_CONFIG = '''
_base_ = ['./resume.py']
custom_imports = dict(imports=['mmase', 'kill_on_save'], allow_failed_imports=False)
'''
# Imported by run B: the process SIGKILLs itself when a temporary file is about to be renamed
# onto the file named by $KILL_ON_SAVE, i.e. the new checkpoint is fully written but not yet
# in place: the latest moment a kill can still lose it.
KILL_ON_SAVE = '''
import os, signal
_replace = os.replace

def _replace_or_die(src, dst, *args, **kwargs):
    if os.path.basename(os.fspath(dst)) == os.environ['KILL_ON_SAVE']:
        os.kill(os.getpid(), signal.SIGKILL)
    return _replace(src, dst, *args, **kwargs)

os.replace = _replace_or_die
'''

# Imported by run D: the process SIGKILLs itself when the validation of iteration
# $KILL_IN_VAL_AT starts (its checkpoint is saved; its metrics are not).
KILL_IN_VAL = '''
import os, signal
from mmengine.runner import ValLoop
_run = ValLoop.run

def _run_or_die(self):
    if self.runner.iter == int(os.environ['KILL_IN_VAL_AT']):
        os.kill(os.getpid(), signal.SIGKILL)
    return _run(self)

ValLoop.run = _run_or_die
'''
KILLED_IN_VAL_CONFIG = '''
_base_ = ['./resume.py']
custom_imports = dict(imports=['mmase', 'kill_in_val'], allow_failed_imports=False)
'''


def load(path):
    return torch.load(path, map_location='cpu')  # weights_only=True (mmase.compat allow-list)


def assert_same_tensors(a, b, what):
    assert a.keys() == b.keys(), what
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f'{what}: {len(differ)} of {len(a)} tensors differ, e.g. {differ[:3]}'


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('resume')
    (tmp / 'resume.py').write_text(RESUME_CONFIG.format(toy=TOY_CONFIG))
    (tmp / 'killed.py').write_text(KILLED_CONFIG)
    (tmp / 'kill_on_save.py').write_text(KILL_ON_SAVE)
    split = write_split(tmp / 'val5.txt', toy_ids('val')[:5])
    options = TINY + ['train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
                      f'val_dataloader.dataset.ann_file={split}']
    a, b = str(tmp / 'a'), str(tmp / 'b')
    run(['tools/train.py', str(tmp / 'resume.py'), '--work-dir', a, '--cfg-options'] + options)
    killed = run(['tools/train.py', str(tmp / 'killed.py'), '--work-dir', b, '--cfg-options']
                 + options, env=tool_env(PYTHONPATH=tmp, KILL_ON_SAVE='iter_4.pth'), check=False)
    b_after_kill = sorted(os.listdir(b))
    with open(osp.join(b, 'last_checkpoint')) as f:
        last_after_kill = f.read()
    iter_2 = load(osp.join(b, 'iter_2.pth')) if 'iter_2.pth' in b_after_kill else None
    resumed = run(['tools/train.py', str(tmp / 'resume.py'), '--work-dir', b, '--resume',
                   '--cfg-options'] + options)
    return dict(a=a, b=b, killed=killed, b_after_kill=b_after_kill, iter_2=iter_2,
                last_after_kill=last_after_kill, resumed_log=resumed.stdout + resumed.stderr,
                tmp=tmp, options=options)


def test_kill_during_the_last_validation_then_resume_writes_its_metrics(runs):
    """D: run A's settings, SIGKILLed when the validation of iteration 4 (the last) starts,
    after iter_4.pth was saved. E: D resumed. E must run that validation (mmengine resumes at
    iteration 4 = max_iters and ends at once) and write A's metrics."""
    tmp, options = runs['tmp'], runs['options']
    (tmp / 'killed_in_val.py').write_text(KILLED_IN_VAL_CONFIG)
    (tmp / 'kill_in_val.py').write_text(KILL_IN_VAL)
    d = str(tmp / 'd')
    killed = run(['tools/train.py', str(tmp / 'killed_in_val.py'), '--work-dir', d,
                  '--cfg-options'] + options, env=tool_env(PYTHONPATH=tmp, KILL_IN_VAL_AT=4),
                 check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    names = os.listdir(d)
    assert 'iter_4.pth' in names and 'metrics_val_iter_2.json' in names
    assert 'metrics_val_iter_4.json' not in names
    resumed = run(['tools/train.py', str(tmp / 'resume.py'), '--work-dir', d, '--resume',
                   '--cfg-options'] + options)
    assert 'metrics_val_iter_4.json is missing: running the validation' in (resumed.stdout
                                                                           + resumed.stderr)
    metrics_a = json.load(open(osp.join(runs['a'], 'metrics_val_iter_4.json')))
    metrics_e = json.load(open(osp.join(d, 'metrics_val_iter_4.json')))
    assert metrics_e == metrics_a
    again = run(['tools/train.py', str(tmp / 'resume.py'), '--work-dir', d, '--resume',
                 '--cfg-options'] + options)  # nothing pending: no second validation
    assert 'is missing: running the validation' not in again.stdout + again.stderr


def test_kill_while_saving_keeps_the_previous_checkpoint(runs):
    assert runs['killed'].returncode == -signal.SIGKILL, runs['killed'].stderr[-3000:]
    names = runs['b_after_kill']
    assert 'iter_2.pth' in names and 'iter_4.pth' not in names, names
    (stale, ) = [n for n in names if n.endswith('.tmp')]
    assert stale.startswith('.iter_4.pth.')  # the complete but never renamed new checkpoint
    assert runs['last_after_kill'] == osp.join(runs['b'], 'iter_2.pth')
    assert runs['iter_2']['meta']['iter'] == 2  # complete and loadable


def test_resumed_run_ends_bit_exact(runs):
    log = runs['resumed_log']
    assert f"resumed from the latest checkpoint {osp.join(runs['b'], 'iter_2.pth')}" in log
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'left by an interrupted save' in log
    names = os.listdir(runs['b'])
    assert not [n for n in names if n.endswith('.tmp')]
    assert 'iter_2.pth' not in names  # max_keep_ckpts=1, removed once iter_4.pth was in place
    a = load(osp.join(runs['a'], 'iter_4.pth'))
    c = load(osp.join(runs['b'], 'iter_4.pth'))
    assert a['meta']['iter'] == c['meta']['iter'] == 4
    assert_same_tensors(a['state_dict'], c['state_dict'], 'weights and buffers')
    opt_a, opt_c = a['optimizer']['state'], c['optimizer']['state']
    assert opt_a.keys() == opt_c.keys()
    for index in opt_a:
        assert_same_tensors(opt_a[index], opt_c[index], f'optimizer state of parameter {index}')
    assert a['param_schedulers'] == c['param_schedulers']
    metrics_a = json.load(open(osp.join(runs['a'], 'metrics_val_iter_4.json')))
    metrics_c = json.load(open(osp.join(runs['b'], 'metrics_val_iter_4.json')))
    assert metrics_a == metrics_c


def test_toy_config_saves_through_the_atomic_backend(tmp_path):
    """The Runner built from the toy config writes checkpoints with AtomicLocalBackend."""
    from mmengine.config import Config
    from mmengine.hooks import CheckpointHook

    from mmase.engine import AtomicLocalBackend, MultiTaskRunner

    cfg = Config.fromfile(TOY_CONFIG)
    cfg.work_dir = str(tmp_path)
    cfg.visualizer.name = 'test_resume_visualizer'  # keep the global 'visualizer' instance free
    cfg.merge_from_dict({'model.backbone.arch.num_layers': 2, 'model.backbone.out_indices': [0, 1]})
    runner = MultiTaskRunner.from_cfg(cfg)
    (hook, ) = [h for h in runner.hooks if isinstance(h, CheckpointHook)]
    hook.before_train(runner)
    assert isinstance(hook.file_backend, AtomicLocalBackend)
    assert hook.out_dir == str(tmp_path)
