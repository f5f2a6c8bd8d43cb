"""Bad data, bad configs, diverging training and crafted checkpoints through tools/train.py and
tools/test.py: each stops with an error naming the file, config field, task or iteration.

The decoders' and the dataset's own checks are tested in tests/test_datasets (truncated PNG /
.mat, size mismatches, missing and empty splits); here the same faults go through the real tools
(Runner, dataloader, hooks), which must neither swallow them nor lose the file name. All cases
run one after the other in one Python process (``run_many``) to pay mmase's import once.
"""
import os
import os.path as osp
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from tool_helpers import TINY, TOY_CONFIG, TOY_DATA, run_many, toy_ids, write_split

DATA_FAULTS = {  # case -> (exception type, regex of the message; {root} = the data copy)
    'truncated_jpeg': ('AssertionError', r'failed to load image: {root}/JPEGImages/{id0}\.jpg'),
    'png_wrong_size': ('ValueError', r'{root}/sal_distill/{id1}\.png: label map is {h1p}x{w1} '
                                     r'but the image {root}/JPEGImages/{id1}\.jpg is {h1}x{w1}'),
    'unreadable_mat': ('OSError', r'{root}/human_parts/{id2}\.mat'),
    'missing_image': ('FileNotFoundError', r'{root}/JPEGImages/ghost_000099\.jpg'),
    'empty_split': ('ValueError', r'empty\.txt lists no image id'),
}
CONFIG_FAULTS = {  # --cfg-options -> (exception type, regex of the message)
    'model.loss_weights.depht=1':  # a declared task the model lacks is left out; a typo is not
        ('ValueError', r"model\.loss_weights names tasks \['depht'\] that are not in model\.tasks"),
    'model.tasks=[semseg,segm]': ('ValueError', r"model\.tasks: unknown task 'segm'"),
    'model.tasks=[semseg,human_parts,sal,normals,edge,depth]':
        ('ValueError', r"model\.decode_heads has no entry for tasks \['depth'\]"),
    'val_evaluator.tasks=[semseg,human_parts,sal,normals,edge,depth]':
        ('ValueError', r"MultiTaskMetric\.stl_reference has no value for task 'depth'"),
    # refused before the Runner is built (nothing is trained): typos, a negative loss weight
    'load_form=/tmp/iter_4.pth':
        ('ValueError', r"--cfg-options load_form: unknown top-level config key 'load_form' "
                       r"\(did you mean 'load_from'\?\)"),
    'default_hooks.checkpoint.intervl=2':
        ('ValueError', r"default_hooks\.checkpoint\.intervl: unknown key 'intervl' for "
                       r"SafeCheckpointHook \(did you mean 'interval'\?\)"),
    'val_evaluator.protocl=astmt':
        ('ValueError', r"val_evaluator\.protocl: unknown key 'protocl' for MultiTaskMetric "
                       r"\(did you mean 'protocol'\?\)"),
    'model.decode_heads.edge.loss_decode.loss_weight=-1':
        ('ValueError', r'model\.decode_heads\.edge\.loss_decode\.loss_weight must be finite and '
                       r'>= 0, got -1'),
}
#: CONFIG_FAULTS refused before the Runner made the work dir.
STARTUP_FAULTS = ('load_form=/tmp/iter_4.pth', 'default_hooks.checkpoint.intervl=2',
                  'val_evaluator.protocl=astmt',
                  'model.decode_heads.edge.loss_decode.loss_weight=-1')


class _Evil:
    """Unpickling runs ``touch <marker>``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture(scope='module')
def broken_data(tmp_path_factory):
    """A copy of the toy data with one broken file per fault and a split file naming it."""
    tmp = tmp_path_factory.mktemp('bad_input')
    root = tmp / 'toy_pascal_mt'
    shutil.copytree(TOY_DATA, root)
    id0, id1, id2, id3 = toy_ids('train')[:4]
    jpeg = root / 'JPEGImages' / f'{id0}.jpg'
    jpeg.write_bytes(jpeg.read_bytes()[:jpeg.stat().st_size // 2])
    w1, h1 = Image.open(root / 'JPEGImages' / f'{id1}.jpg').size
    Image.fromarray(np.zeros((h1 + 1, w1), np.uint8)).save(root / 'sal_distill' / f'{id1}.png')
    (root / 'human_parts' / f'{id2}.mat').write_bytes(b'not a MATLAB file ' * 20)
    splits = dict(truncated_jpeg=[id0], png_wrong_size=[id1], unreadable_mat=[id2],
                  missing_image=[id3, 'ghost_000099'], empty_split=[])
    names = {case: ('empty.txt' if case == 'empty_split' else f'{case}.txt') for case in splits}
    split_files = {case: write_split(tmp / names[case], ids) for case, ids in splits.items()}
    fields = dict(root=re.escape(str(root)), id0=id0, id1=id1, id2=id2, h1=h1, w1=w1, h1p=h1 + 1)
    return tmp, root, split_files, fields


@pytest.fixture(scope='module')
def results(broken_data):
    tmp, root, split_files, _ = broken_data
    cases = {}
    for case, split in split_files.items():
        cases[case] = ('tools/train.py', [
            TOY_CONFIG, '--work-dir', str(tmp / 'work' / case), '--cfg-options'] + TINY + [
            f'train_dataloader.dataset.data_root={root}',
            f'train_dataloader.dataset.ann_file={split}'])
    for option in CONFIG_FAULTS:
        work_dir = tmp / 'work' / (f'startup{STARTUP_FAULTS.index(option)}'
                                   if option in STARTUP_FAULTS else 'cfg')
        cases[option] = ('tools/train.py', [TOY_CONFIG, '--work-dir', str(work_dir),
                                            '--cfg-options'] + TINY + [option])
    # a checkpoint folder that cannot be created (under a file): refused before training
    (tmp / 'plain_file').write_text('')
    cases['out_dir_under_file'] = ('tools/train.py', [
        TOY_CONFIG, '--work-dir', str(tmp / 'work' / 'out_dir'), '--cfg-options'] + TINY + [
        f'default_hooks.checkpoint.out_dir={tmp / "plain_file" / "ckpt"}'])
    # crafted checkpoints: refused before anything is built
    marker = tmp / 'pwned'
    evil = tmp / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': _Evil(str(marker))}, evil)
    cases['test_crafted'] = ('tools/test.py', [TOY_CONFIG, str(evil), '--work-dir',
                                               str(tmp / 'work' / 'test_crafted')])
    resume_dir = tmp / 'work' / 'resume_crafted'
    resume_dir.mkdir(parents=True)
    (resume_dir / 'last_checkpoint').write_text(str(evil))
    cases['resume_crafted'] = ('tools/train.py', [TOY_CONFIG, '--work-dir', str(resume_dir),
                                                  '--resume', '--cfg-options'] + TINY)
    # a last_checkpoint naming a deleted file (what mmengine's CheckpointHook leaves when killed
    # while saving with max_keep_ckpts=1)
    lost_dir = tmp / 'work' / 'resume_lost'
    lost_dir.mkdir(parents=True)
    (lost_dir / 'last_checkpoint').write_text(str(lost_dir / 'iter_2.pth'))
    cases['resume_lost'] = ('tools/train.py', [TOY_CONFIG, '--work-dir', str(lost_dir),
                                               '--resume', '--cfg-options'] + TINY)
    # divergence, last (it trains): a huge learning rate, a checkpoint every iteration
    diverge_dir = tmp / 'work' / 'diverge'
    cases['diverge'] = ('tools/train.py', [
        TOY_CONFIG, '--work-dir', str(diverge_dir), '--cfg-options'] + TINY + [
        'optim_wrapper.optimizer.lr=1e6', 'default_hooks.checkpoint.interval=1'])
    outcome = dict(zip(cases, run_many(list(cases.values()))))
    return outcome, marker, tmp / 'work'


@pytest.mark.parametrize('case', sorted(DATA_FAULTS))
def test_bad_data_names_the_file(results, broken_data, case):
    outcome, _, _ = results
    error_type, pattern = DATA_FAULTS[case]
    assert outcome[case] is not None, f'{case}: training did not stop'
    assert outcome[case][0] == error_type, outcome[case]
    assert re.search(pattern.format(**broken_data[3]), outcome[case][1]), outcome[case]


@pytest.mark.parametrize('option', sorted(CONFIG_FAULTS))
def test_bad_config_is_refused_at_build(results, option):
    outcome, _, _ = results
    error_type, pattern = CONFIG_FAULTS[option]
    assert outcome[option] is not None and outcome[option][0] == error_type, outcome[option]
    assert re.search(pattern, outcome[option][1]), outcome[option]


def test_typos_and_bad_weights_are_refused_before_the_run_starts(results):
    outcome, _, work = results
    for index, option in enumerate(STARTUP_FAULTS):
        assert outcome[option] is not None, option
        assert not (work / f'startup{index}').exists(), option  # no Runner, no training


def test_unwritable_checkpoint_dir_is_refused_before_training(results):
    outcome, _, work = results
    error_type, message = outcome['out_dir_under_file']
    assert error_type == 'NotADirectoryError', outcome['out_dir_under_file']
    assert re.search(r'default_hooks\.checkpoint\.out_dir \S+/plain_file/ckpt: \S+/plain_file '
                     r'is a file, not a folder', message), message
    assert not (work / 'out_dir').exists()  # before the Runner: nothing trained


def test_crafted_checkpoint_is_refused_and_nothing_runs(results):
    outcome, marker, work = results
    for case in ('test_crafted', 'resume_crafted'):
        error_type, message = outcome[case]
        assert error_type == 'UnsafeCheckpointError', outcome[case]
        assert re.search(r'refusing to load checkpoint \S+/evil\.pth: .*GLOBAL posix\.system',
                         message), message
    assert not marker.exists()
    assert not (work / 'test_crafted').exists()  # refused before the Runner made its work dir
    assert os.listdir(work / 'resume_crafted') == ['last_checkpoint']


def test_resume_from_a_lost_checkpoint_names_it(results):
    outcome, _, work = results
    lost = work / 'resume_lost' / 'iter_2.pth'
    assert outcome['resume_lost'] == ('FileNotFoundError', f'checkpoint {lost} does not exist')


def test_diverging_training_stops_naming_task_and_iteration(results):
    outcome, _, work = results
    error_type, message = outcome['diverge']
    assert error_type == 'FloatingPointError', outcome['diverge']
    match = re.match(r"non-finite loss (\w+)\.loss_\w+=(nan|inf|-inf) \(task '(\w+)'\) at "
                     r'iteration (\d+)', message)
    # or, first, a state gone non-finite under a finite loss (BN running_var overflowing),
    # caught before the checkpoint of that iteration
    state = re.match(r'non-finite model state before the checkpoint of iteration (\d+): '
                     r'(\S+) \(\d+ of \d+ values non-finite', message)
    assert match or state, message
    if match:
        assert match.group(1) == match.group(3), message
        assert match.group(1) in ('semseg', 'human_parts', 'sal', 'normals', 'edge')
    step = int(match.group(4) if match else state.group(1))
    assert step >= 2  # iteration 1 starts from finite weights
    names = os.listdir(work / 'diverge')
    # the hook runs before CheckpointHook: the non-finite iteration is never saved
    assert f'iter_{step}.pth' not in names and f'iter_{step - 1}.pth' in names, names
    with open(work / 'diverge' / 'last_checkpoint') as f:
        assert osp.basename(f.read()) == f'iter_{step - 1}.pth'
