"""Checkpoints through tools/train.py and tools/test.py: by URL (served on 127.0.0.1), damaged,
and not matching the model. All cases run one after the other in one Python process.

- A crafted checkpoint given by URL is refused like a local one (mmengine's own http loader
  unpickles with weights_only=False: the pickle ran ``touch`` and the run exited 0).
- Empty / random files are refused naming the file and what is wrong; so is a checkpoint with
  one flipped byte in its tensor data (CRC-32 mismatch; torch.load reads it silently and the
  run exited 0 with other metrics).
- A checkpoint whose keys or shapes do not match the model is an error at test and resume time
  (mmengine only warns and evaluates random layers), unless ``--allow-partial-checkpoint``.
"""
import functools
import http.server
import json
import os
import re
import shutil
import struct
import threading
import zipfile

import numpy as np
import pytest
import torch
from tool_helpers import TINY, TOY_CONFIG, run_many, tool_env, toy_ids, write_split

#: A model that differs from the checkpoint of ``toy_run``: one more ViT block.
DEEPER = ['model.backbone.arch.num_layers=3', 'model.backbone.out_indices=[1,2]']


class _Evil:
    """Unpickling runs ``touch <marker>``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def _flip_a_tensor_byte(path):
    """Flip one bit in the middle of the largest tensor's bytes (bit rot)."""
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if '/data/' in i.filename),
                   key=lambda i: i.file_size)
    with open(path, 'r+b') as f:
        f.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack('<HH', f.read(4))
        f.seek(info.header_offset + 30 + name_length + extra_length + info.file_size // 2)
        byte = f.read(1)[0]
        f.seek(-1, 1)
        f.write(bytes([byte ^ 0x01]))


@pytest.fixture(scope='module')
def served(tmp_path_factory):
    """A folder served over http on 127.0.0.1 only, while the module's tests run."""
    root = tmp_path_factory.mktemp('served')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


@pytest.fixture(scope='module')
def results(served, toy_run, tmp_path_factory):
    root, base = served
    tmp = tmp_path_factory.mktemp('checkpoint_faults')
    marker = tmp / 'pwned'
    torch.save({'state_dict': {}, 'meta': _Evil(str(marker))}, root / 'evil.pth')
    shutil.copy(toy_run.checkpoint, root / 'good.pth')
    (tmp / 'empty.pth').write_bytes(b'')
    (tmp / 'noise.pth').write_bytes(np.random.default_rng(0).bytes(5000))
    shutil.copy(toy_run.checkpoint, tmp / 'rotten.pth')
    _flip_a_tensor_byte(tmp / 'rotten.pth')
    split = write_split(tmp / 'test5.txt', toy_ids('val')[:5])
    small = TINY + [f'test_dataloader.dataset.ann_file={split}']
    work = tmp / 'work'

    def test(case, checkpoint, *extra, options=()):
        return ('tools/test.py', [TOY_CONFIG, str(checkpoint), '--work-dir', str(work / case),
                                  *extra, '--cfg-options'] + small + list(options))

    resume_dir = work / 'resume_mismatch'
    resume_dir.mkdir(parents=True)
    (resume_dir / 'last_checkpoint').write_text(toy_run.checkpoint)
    cases = dict(
        train_url_evil=('tools/train.py', [TOY_CONFIG, '--work-dir', str(work / 'train_url'),
                                           '--cfg-options'] + TINY + [
                                               f'load_from={base}/evil.pth']),
        test_url_evil=test('test_url_evil', f'{base}/evil.pth'),
        train_pretrained_evil=('tools/train.py', [
            TOY_CONFIG, '--work-dir', str(work / 'train_pretrained'), '--cfg-options'] + TINY + [
            f'model.backbone.pretrained={root / "evil.pth"}']),
        test_empty=test('test_empty', tmp / 'empty.pth'),
        test_noise=test('test_noise', tmp / 'noise.pth'),
        test_rotten=test('test_rotten', tmp / 'rotten.pth'),
        test_mismatch=test('test_mismatch', toy_run.checkpoint, options=DEEPER),
        resume_mismatch=('tools/train.py', [TOY_CONFIG, '--work-dir', str(resume_dir),
                                            '--resume', '--cfg-options'] + TINY + DEEPER),
        test_partial=test('test_partial', toy_run.checkpoint, '--allow-partial-checkpoint',
                          options=DEEPER),
        test_url_good=test('test_url_good', f'{base}/good.pth'),
    )
    env = tool_env(TORCH_HOME=tmp / 'torch_home')
    outcome = dict(zip(cases, run_many(list(cases.values()), env=env)))
    return outcome, marker, work, base


def test_crafted_url_checkpoint_is_refused_and_nothing_runs(results):
    outcome, marker, work, base = results
    for case in ('train_url_evil', 'test_url_evil'):
        assert outcome[case] is not None, f'{case}: the run went on'
        error_type, message = outcome[case]
        assert error_type == 'UnsafeCheckpointError', outcome[case]
        assert re.search(rf'refusing to load checkpoint {re.escape(base)}/evil\.pth \(cached as '
                         r'\S+evil\.pth\): .*GLOBAL posix\.system', message), message
    assert not marker.exists()
    assert not (work / 'train_url').exists() and not (work / 'test_url_evil').exists()


def test_crafted_pretrained_file_gets_the_same_refusal(results):
    """model.backbone.pretrained: today torch's own message, which suggests weights_only=False."""
    outcome, marker, work, _ = results
    error_type, message = outcome['train_pretrained_evil']
    assert error_type == 'UnsafeCheckpointError', outcome['train_pretrained_evil']
    assert re.match(r'model\.backbone\.pretrained: refusing to load checkpoint \S+/evil\.pth: '
                    r'.*GLOBAL posix\.system', message), message
    assert 'will likely succeed' not in message and 'never with weights_only=False' in message
    assert not marker.exists() and not (work / 'train_pretrained').exists()


def test_url_checkpoint_evaluates_as_the_file(results, toy_run):
    outcome, _, work, _ = results
    assert outcome['test_url_good'] is None, outcome['test_url_good']
    assert json.load(open(work / 'test_url_good' / 'metrics_test.json'))


@pytest.mark.parametrize('case, pattern', [
    ('test_empty', r'cannot load checkpoint \S+/empty\.pth: the file is empty \(0 bytes\)'),
    ('test_noise', r'cannot load checkpoint \S+/noise\.pth: not a PyTorch checkpoint'),
    ('test_rotten', r'cannot load checkpoint \S+/rotten\.pth: the file is damaged: the bytes of '
                    r"its entry '\S+/data/\d+' do not match the CRC-32"),
])
def test_damaged_checkpoint_names_file_and_problem(results, case, pattern):
    outcome, _, _, _ = results
    assert outcome[case] is not None and outcome[case][0] == 'InvalidCheckpointError', \
        outcome[case]
    assert re.search(pattern, outcome[case][1]), outcome[case][1]
    assert 'weights_only=False' not in outcome[case][1]


@pytest.mark.parametrize('case', ['test_mismatch', 'resume_mismatch'])
def test_mismatching_checkpoint_is_an_error_at_test_and_resume(results, toy_run, case):
    outcome, _, work, _ = results
    assert outcome[case] is not None, f'{case}: evaluated / trained with random layers'
    error_type, message = outcome[case]
    assert error_type == 'CheckpointMismatchError', outcome[case]
    assert message.startswith(f'checkpoint {toy_run.checkpoint} does not match the model: ')
    assert re.search(r'\d+ missing keys \(backbone\.blocks\.2\.', message), message
    assert '--allow-partial-checkpoint' in message
    if case == 'test_mismatch':
        assert not (work / case / 'metrics_test.json').exists()


def test_partial_load_is_an_explicit_choice(results):
    outcome, _, work, _ = results
    assert outcome['test_partial'] is None, outcome['test_partial']
    assert (work / 'test_partial' / 'metrics_test.json').exists()
