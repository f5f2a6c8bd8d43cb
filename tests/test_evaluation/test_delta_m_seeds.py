"""Δm over seeds: mean ± std and the paired comparison against hand-computed values, and
tools/analysis/delta_m.py --seeds on saved metric files."""
import importlib.util
import json
import math
import os.path as osp

import pytest

from mmase.evaluation.delta_m_seeds import paired_comparison, seeds_to_separate, summarise_seeds

TOOL = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools',
                'analysis', 'delta_m.py')


def test_mean_and_sample_std():
    s = summarise_seeds([1, 2, 3, 4])
    assert (s.mean, s.n) == (2.5, 4)
    assert s.std == pytest.approx(math.sqrt(5 / 3))  # (2.25 + 0.25 + 0.25 + 2.25) / 3
    one = summarise_seeds([7.0])
    assert one.mean == 7.0 and math.isnan(one.std)


def test_paired_comparison_by_hand():
    # d = b - a = (1, 2, 2): mean 5/3, std sqrt(((2/3)^2 + 2 (1/3)^2) / 2) = 1/sqrt(3),
    # t = (5/3) / ((1/sqrt(3)) / sqrt(3)) = 5 on 2 degrees of freedom
    c = paired_comparison([1, 2, 3], [2, 4, 5])
    assert c.mean_diff == pytest.approx(5 / 3)
    assert c.std_diff == pytest.approx(1 / math.sqrt(3))
    assert c.t == pytest.approx(5.0)
    # Student t with 2 dof: P(|T| > t) = 1 - t / sqrt(t^2 + 2)
    assert c.p == pytest.approx(1 - 5 / math.sqrt(27))
    # t_{0.975, 2} = 4.302653 (tables); half width 4.302653 / 3
    assert c.ci95 == pytest.approx((5 / 3 - 4.302653 / 3, 5 / 3 + 4.302653 / 3), abs=1e-6)
    # n = 2 gives t = (5/3) sqrt(2) sqrt(3) = 4.08 < t_{0.975, 1} = 12.71; n = 3: 5 > 4.30
    assert c.seeds_needed == 3
    assert paired_comparison([1, 2], [2, 3]).p == 0.0  # the same difference at every seed


def test_seeds_to_separate_and_errors():
    assert seeds_to_separate(0.0, 1.0) is None
    assert seeds_to_separate(1.0, 0.0) == 2  # no spread: the smallest paired test
    assert seeds_to_separate(0.001, 1.0) is None  # needs more than 1000 seeds
    # |d| = std: t = sqrt(n) > t_{0.975, n-1} first at n = 7 (2.646 > 2.447; n = 6: 2.449 < 2.571)
    assert seeds_to_separate(1.0, 1.0) == 7
    with pytest.raises(ValueError, match='Δm: 2 seeds against 3; a paired comparison needs'):
        paired_comparison([1, 2], [1, 2, 3], 'Δm')
    with pytest.raises(ValueError, match='at least 2 seeds, got 1'):
        paired_comparison([1], [2])
    with pytest.raises(ValueError, match=r"ASE: semseg: nan is not a finite number"):
        summarise_seeds([1.0, float('nan')], 'ASE: semseg')
    with pytest.raises(ValueError, match='no value'):
        summarise_seeds([])


def test_tool_seeds_table_and_paired_comparison(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location('delta_m_tool_seeds', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    # reference semseg 50 (higher better), normals 20 (lower better)
    runs = []
    for method, values in (('moe', [(50, 20), (55, 20), (50, 25)]),
                           ('ase', [(55, 20), (60, 18), (55, 25)])):
        for seed, (seg, nrm) in enumerate(values):
            path = tmp_path / f'{method}_s{seed}' / 'metrics_test.json'
            path.parent.mkdir()
            path.write_text(json.dumps({'semseg/mIoU': seg, 'normals/mErr': nrm}))
            runs.append(str(path.parent))
    tool.main(runs + ['--stl', 'semseg=50', 'normals=20', '--seeds', '3',
                      '--names', 'LoRA-MoE', 'ASE'])
    out = capsys.readouterr().out
    # moe: Δ semseg 0, 10, 0; Δ normals 0, 0, -25 -> Δm 0, 5, -12.5: mean -2.5, std 9.01
    # ase: Δ semseg 10, 20, 10; Δ normals 0, 10, -25 -> Δm 5, 15, -7.5: mean 4.17, std 11.27
    lines = {line.split('|')[1].strip(): [c.strip() for c in line.split('|')[2:-1]]
             for line in out.splitlines() if line.startswith('|')}
    assert lines['LoRA-MoE (3)'] == ['51.67 ± 2.89', '21.67 ± 2.89', '-2.50 ± 9.01']
    assert lines['ASE (3)'] == ['56.67 ± 2.89', '21.00 ± 3.61', '+4.17 ± 11.27']
    # paired Δm differences 5, 10, 5: mean 6.67, std 2.89, t = 4.0, p = 0.057 (2 dof);
    # t_{0.975,2} 2.89 / sqrt(3) = 7.17; with this spread 4 seeds would separate them
    assert 'ASE − LoRA-MoE, paired by seed (run order):' in out
    assert lines['Δm'] == ['+6.67', '2.89', '+4.00', '0.057', '[-0.50, +13.84]', '4']
    assert lines['Δ semseg'] == ['+10.00', '0.00', '+inf', '0.000', '[+10.00, +10.00]', '2']
    with pytest.raises(ValueError, match='--seeds 4: 6 runs do not form configurations of 4'):
        tool.main(runs + ['--stl', 'semseg=50', 'normals=20', '--seeds', '4'])
    with pytest.raises(ValueError, match='--names: 1 names for 2 configurations of 3 seeds'):
        tool.main(runs + ['--stl', 'semseg=50', 'normals=20', '--seeds', '3', '--names', 'x'])
