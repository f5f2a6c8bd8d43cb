"""tools/analysis/delta_m.py on saved metric JSON files (ASTMT README numbers)."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis', 'delta_m.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('delta_m_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(path, data, mtime=None):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        if isinstance(data, str):
            f.write(data)
        else:
            json.dump(data, f)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return str(path)


@pytest.fixture
def runs(tmp_path):
    """Single-task work dirs (semseg, parts, normals, sal) and two multi-task runs."""
    stl = {}
    for task, key, value in (('semseg', 'semseg/mIoU', 68.30),
                             ('human_parts', 'human_parts/mIoU', 60.70),
                             ('normals', 'normals/mErr', 14.61), ('sal', 'sal/maxF', 65.40)):
        work_dir = tmp_path / f'stl_{task}'
        # an older metric file with another value, and mmengine's JSON-lines log: both passed over
        write(work_dir / 'metrics_val_iter_4.json', {key: 1.0}, mtime=1_000)
        write(work_dir / '20250101_000000' / 'vis_data' / 'scalars.json',
              '{"loss": 1.0, "step": 1}\n{"loss": 0.5, "step": 2}\n', mtime=3_000)
        write(work_dir / 'metrics_test.json', {key: value, 'multitask/num': 1}, mtime=2_000)
        stl[task] = str(work_dir)
    without = write(tmp_path / 'mtl' / 'metrics_test.json',
                    {'semseg/mIoU': 63.20, 'human_parts/mIoU': 55.10, 'normals/mErr': 16.04,
                     'sal/maxF': 63.60, 'edge/odsF': 69.2})
    # keys with a prefix, as mmengine writes them when the metric has one
    with_astmt = write(tmp_path / 'astmt' / 'test.json',
                       {'test/semseg/mIoU': 68.00, 'test/human_parts/mIoU': 61.12,
                        'test/normals/mErr': 14.68, 'test/sal/maxF': 65.71, 'test/edge/odsF': 72.4})
    return stl, without, with_astmt


def test_newest_metric_json_of_a_work_dir(tool, runs):
    stl, _, _ = runs
    path, metrics = tool.load_metrics(stl['semseg'])
    assert path.endswith('metrics_test.json') and metrics['semseg/mIoU'] == 68.30


def test_table_reproduces_astmt(tool, runs, capsys):
    stl, without, with_astmt = runs
    args = [without, with_astmt, '--stl'] + [f'{t}={p}' for t, p in stl.items()] + ['edge=72.7']
    tool.main(args)
    out = capsys.readouterr().out
    lines = {line.split('|')[1].strip(): line for line in out.splitlines() if line.startswith('|')}
    assert lines[without].rstrip(' |').endswith('-6.81')
    assert '63.20 (-7.47)' in lines[without]  # semseg relative change
    assert '16.04 (-9.79)' in lines[without]  # normals: lower is better
    assert lines[with_astmt].rstrip(' |').endswith('-0.03')
    assert '72.70' in lines['single-task reference']


def test_reference_from_numbers_and_extra_tasks_noted(tool, runs, capsys):
    _, without, _ = runs
    tool.main([without, '--stl', 'semseg=68.3', 'sal=65.4'])
    out = capsys.readouterr().out
    expected = ((63.2 - 68.3) / 68.3 + (63.6 - 65.4) / 65.4) / 2 * 100
    assert f'{expected:+.2f}' in out
    assert "also reports ['human_parts', 'normals', 'edge'], left out of" in out


def test_errors(tool, runs, tmp_path):
    stl, without, _ = runs
    with pytest.raises(KeyError, match="no 'depth/rmse'"):
        tool.main([without, '--stl', 'depth=0.5'])
    with pytest.raises(ValueError, match='expected task=PATH or task=NUMBER'):
        tool.main([without, '--stl', 'semseg'])
    with pytest.raises(FileNotFoundError, match='neither a file, a work dir nor a number'):
        tool.main([without, '--stl', f'semseg={tmp_path / "nope"}'])
    with pytest.raises(ValueError, match="no main metric is defined for task 'albedo'"):
        tool.main([without, '--stl', 'albedo=1.0'])
    empty = tmp_path / 'empty_run'
    empty.mkdir()
    write(empty / 'other.json', {'lr': 0.1})
    with pytest.raises(FileNotFoundError, match='no \\*.json holding a metric dict'):
        tool.main([str(empty), '--stl', 'semseg=68.3'])
    with pytest.raises(FileNotFoundError, match='no such file or work dir'):
        tool.main([str(tmp_path / 'missing'), '--stl', 'semseg=68.3'])


def test_runs_as_a_script(runs):
    _, without, _ = runs
    proc = subprocess.run([sys.executable, TOOL, without, '--stl', 'semseg=68.3', 'edge=72.7'],
                          capture_output=True, text=True, cwd=osp.dirname(without))
    assert proc.returncode == 0, proc.stderr
    assert 'Δm (%)' in proc.stdout
