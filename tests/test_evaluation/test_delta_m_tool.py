"""tools/analysis/delta_m.py on saved metric JSON files (ASTMT README numbers)."""
import csv
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


ASE_REFERENCE = osp.join(ROOT, 'configs', '_base_', 'stl_reference', 'pascal_mt_resnet18_ase.py')


@pytest.fixture
def ase_runs(tmp_path):
    """Two finished work dirs with ASE's Table 1 rows (ASE 32/6/2/2 and 16/3/1/4) as test
    metrics, the saliency main metric as mIoU, edge loss too."""
    dirs = []
    for name, (seg, norm, parts, sal, edge) in (('ase_32-6-2-2', (74.0, 17.2, 60.3, 63.3, 54.9)),
                                                ('ase_16-3-1-4', (74.0, 17.3, 60.1, 63.2, 55.3))):
        work_dir = tmp_path / name
        write(work_dir / 'metrics_test.json',
              {'semseg/mIoU': seg, 'normals/mErr': norm, 'human_parts/mIoU': parts,
               'sal/mIoU': sal, 'sal/maxF': 99.0, 'edge/odsF': edge, 'edge/loss': 0.05})
        dirs.append(str(work_dir))
    return dirs


def test_work_dirs_against_the_ase_reference_as_markdown_and_csv(tool, ase_runs, tmp_path, capsys):
    md, csv_path = tmp_path / 'table1.md', tmp_path / 'table1.csv'
    rows = tool.main(ase_runs + ['--reference', ASE_REFERENCE, '--names', 'ASE 32/6/2/2',
                                 'ASE 16/3/1/4', '--md', str(md), '--csv', str(csv_path)])
    assert [round(r.delta_m, 2) for r in rows] == [7.58, 7.50]  # the paper prints 7.58, 7.49
    assert rows[0].values['sal'] == 63.3  # sal/mIoU, as the reference names, not sal/maxF
    lines = md.read_text().splitlines()
    assert lines[0] == ('| run | semseg/mIoU ↑ | normals/mErr ↓ | human_parts/mIoU ↑ | sal/mIoU ↑ '
                        '| edge/odsF ↑ | Δm (%) |')
    assert lines[2].startswith('| ASE (arXiv 2510.00570) Table 1, STL ResNet-18 row') \
        and lines[2].endswith('| 60.10 | 15.40 | 51.00 | 63.20 | 50.80 | 0.00 |')
    assert lines[3] == '| ASE 32/6/2/2 | 74.00 | 17.20 | 60.30 | 63.30 | 54.90 | +7.58 |'
    with open(csv_path) as f:
        table = list(csv.DictReader(f))
    assert [r['run'] for r in table][1:] == ['ASE 32/6/2/2', 'ASE 16/3/1/4']
    assert float(table[1]['delta_m']) == pytest.approx(7.5808, abs=1e-4)
    assert float(table[2]['delta_normals']) == pytest.approx(-(17.3 - 15.4) / 15.4 * 100)
    assert table[1]['source'].endswith('ase_32-6-2-2/metrics_test.json')
    assert 'Δm (%)' in capsys.readouterr().out


def test_main_metric_choice_order_and_reference_errors(tool, ase_runs, tmp_path):
    # ablation style: edge by its loss (lower is better) against numbers given by hand
    rows = tool.main(ase_runs[:1] + ['--stl', 'edge=0.1', 'sal=63.3', '--main-metrics',
                                     'edge=loss', 'sal=mIoU', '--order', 'sal', 'edge'])
    assert rows[0].deltas == dict(edge=pytest.approx(50.0), sal=pytest.approx(0.0))
    with pytest.raises(ValueError, match=r"--main-metrics\['edge'\]='loss' but .*"
                       r"pascal_mt_resnet18_ase.py: stl_reference.metrics\['edge'\]='odsF'"):
        tool.main(ase_runs + ['--reference', ASE_REFERENCE, '--main-metrics', 'edge=loss'])
    with pytest.raises(ValueError, match='exactly one of --reference FILE and --stl'):
        tool.main(ase_runs)
    ablation = osp.join(ROOT, 'configs', '_base_', 'stl_reference',
                        'pascal_mt_vit-b16_ase-ablation.py')
    with pytest.raises(ValueError, match='stl_reference is not set in this file'):
        tool.main(ase_runs + ['--reference', ablation])
    partial = write(tmp_path / 'partial_ref.py', "stl_reference = dict(source='mine', sal=60.0, "
                    "depth=0.5)\n")
    with pytest.raises(KeyError, match="no 'depth/rmse'"):
        tool.main(ase_runs + ['--reference', partial])
    with pytest.raises(ValueError, match=r"--order names \['depth'\]"):
        tool.main(ase_runs + ['--stl', 'sal=60', '--order', 'depth'])
    with pytest.raises(ValueError, match='2 names for 1 runs'):
        tool.main(ase_runs[:1] + ['--stl', 'sal=60', '--names', 'a', 'b'])
