"""Startup checks of the tools: unknown config keys (top level, hooks, metrics), negative
``loss_decode.loss_weight``, unwritable output folders."""
import errno
import os

import pytest
from mmengine.config import Config

from mmase.engine import config_check
from mmase.engine.config_check import (check_config, check_hook_and_evaluator_keys,
                                       check_loss_weights, check_output_dirs,
                                       check_top_level_keys, check_writable_dir)


def _cfg(**kwargs):
    base = dict(work_dir='w', load_from=None, train_pipeline=[], crop_size=(8, 8),
                default_hooks=dict(checkpoint=dict(type='SafeCheckpointHook', interval=2),
                                   logger=dict(type='LoggerHook', interval=1)),
                custom_hooks=[dict(type='SaveMetricsHook', priority='LOW')],
                val_evaluator=dict(type='MultiTaskMetric', tasks=('semseg', ), num_classes=None),
                test_evaluator=[dict(type='MultiTaskMetric', tasks=('semseg', )),
                                dict(type='DumpResults', out_file_path='x.pkl')])
    base.update(kwargs)
    return Config(base)


def test_valid_config_passes():
    check_config(_cfg(), {'train_cfg.max_iters': 4, 'crop_size': (4, 4)},
                 file_keys=_cfg().keys())


def test_command_line_key_nobody_reads_is_refused():
    cfg = _cfg(load_form='x.pth')
    with pytest.raises(ValueError, match=r"--cfg-options load_form: unknown top-level config key "
                                         r"'load_form' \(did you mean 'load_from'\?\)"):
        check_top_level_keys(cfg, {'load_form': 'x.pth'}, file_keys=_cfg().keys())


def test_file_key_one_edit_from_a_runner_key_is_refused():
    with pytest.raises(ValueError, match=r"'val_evalutor' is not read by anything \(did you "
                                         r"mean 'val_evaluator'\?\)"):
        check_top_level_keys(_cfg(val_evalutor=dict(type='MultiTaskMetric')))
    # variables of a config file (pipelines, sizes) are not typos
    check_top_level_keys(_cfg(test_pipeline=[], norm_cfg=dict(type='BN'), tasks=('semseg', )))


@pytest.mark.parametrize('field, value, pattern', [
    ('default_hooks', dict(checkpoint=dict(type='SafeCheckpointHook', intervl=2)),
     r"default_hooks\.checkpoint\.intervl: unknown key 'intervl' for SafeCheckpointHook "
     r"\(did you mean 'interval'\?\)"),
    ('default_hooks', dict(logger=dict(type='MainProcessLoggerHook', intreval=1)),
     r"default_hooks\.logger\.intreval: .* MainProcessLoggerHook \(did you mean 'interval'"),
    ('custom_hooks', [dict(type='PerIterSeedHook', sed=1)],
     r"custom_hooks\.0\.sed: unknown key 'sed' for PerIterSeedHook \(did you mean 'seed'"),
    ('val_evaluator', dict(type='MultiTaskMetric', protocl='invpt'),
     r"val_evaluator\.protocl: unknown key 'protocl' for MultiTaskMetric \(did you mean "
     r"'protocol'"),
    ('test_evaluator', [dict(type='MultiTaskMetric'), dict(type='DumpResults', out_file='x')],
     r"test_evaluator\.1\.out_file: unknown key 'out_file' for DumpResults"),
])
def test_unknown_hook_and_metric_keys_are_refused(field, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        check_hook_and_evaluator_keys(_cfg(**{field: value}))


def test_negative_loss_decode_weight_is_refused():
    heads = dict(semseg=dict(type='FCNHead', loss_decode=dict(type='CrossEntropyLoss',
                                                              loss_weight=1.0)),
                 edge=dict(type='FCNHead', loss_decode=[
                     dict(type='CrossEntropyLoss', loss_weight=1.0),
                     dict(type='DiceLoss', loss_weight=-0.5)]))
    with pytest.raises(ValueError, match=r'model\.decode_heads\.edge\.loss_decode\.1\.loss_weight '
                                         r'must be finite and >= 0, got -0\.5'):
        check_loss_weights(Config(dict(model=dict(decode_heads=heads))))
    heads['edge']['loss_decode'][1]['loss_weight'] = 0.0
    check_loss_weights(Config(dict(model=dict(decode_heads=heads))))


def test_output_dir_under_a_file_is_refused(tmp_path):
    (tmp_path / 'plain_file').write_text('')
    cfg = Config(dict(work_dir=str(tmp_path / 'work'), default_hooks=dict(
        checkpoint=dict(type='CheckpointHook', out_dir=str(tmp_path / 'plain_file' / 'ckpt')))))
    with pytest.raises(NotADirectoryError, match=r'default_hooks\.checkpoint\.out_dir .*ckpt: '
                                                 r'.*plain_file is a file, not a folder'):
        check_output_dirs(cfg)
    assert not (tmp_path / 'work').exists()  # nothing created
    check_output_dirs(cfg, training=False)  # tests save no checkpoint


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders')
def test_read_only_work_dir_is_refused(tmp_path):
    folder = tmp_path / 'ro'
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match=r'work_dir .*ro/run is not writable'):
            check_writable_dir(str(folder / 'run'), 'work_dir')
    finally:
        folder.chmod(0o755)


def test_read_only_file_system_is_refused(tmp_path, monkeypatch):
    """As a read-only mount answers (simulated: root passes permission checks)."""
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, 'Read-only file system')

    monkeypatch.setattr(config_check.tempfile, 'mkstemp', refuse)
    with pytest.raises(OSError, match=rf'work_dir {tmp_path}/a/b is not writable: cannot create '
                                      rf'a file in {tmp_path} \(where .* would be created\): '
                                      r'Read-only file system'):
        check_writable_dir(str(tmp_path / 'a' / 'b'), 'work_dir')
    check_writable_dir('s3://bucket/run', 'work_dir')  # remote: not checked here
