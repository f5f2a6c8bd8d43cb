"""benchmark_memory.py: the CPU step peak is the live bytes of the tensors a step allocated,
checked against sizes computed by hand; a tiny ASE backbone's step reads the same bytes twice in
one process (the first model's cycles collected mid-step do not count) and fewer with with_cp;
the batch fit behind the extrapolated rows."""
import importlib.util
import os.path as osp

import pytest
import torch

TOOL = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools',
                'analysis', 'benchmark_memory.py')
TINY = dict(embed_dims=32, num_layers=4, num_heads=2)


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('benchmark_memory_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tensor_peak_by_hand(tool):
    kept = torch.empty(10_000)  # live before the step: not counted, never freed in it

    def step():
        a = torch.empty(1000)  # 4000 B
        b = torch.empty(3000)  # 16000 live
        del a  # 12000
        c = torch.empty(500, dtype=torch.float64)  # 16000
        d = torch.empty(2000)  # 24000: the peak
        del b, c, d
        return kept.numel()

    result, peak = tool.cpu_tensor_peak(step)
    assert result == 10_000 and peak == 24_000


def test_tensor_peak_counts_frees(tool):
    def step():
        a = torch.empty(1000)  # 4000 B
        del a
        return [torch.empty(2000)]  # 8000 B, kept after the step

    held, peak = tool.cpu_tensor_peak(step)
    assert peak == 8000  # not 12000: the first block was freed before the second

    def next_step():
        held.pop()  # frees 8000 B that c10 counted in the step before: not this step's
        return torch.empty(1000).numel()  # 4000 B

    _, peak = tool.cpu_tensor_peak(next_step)
    assert peak == 4000


def test_one_step_tensor_peak_is_exact_and_with_cp_lowers_it(tool):
    rows = {cp: [tool.one_step(TINY, batch=1, size=32, tasks=2, with_cp=cp, device='cpu')
                 for _ in range(2)] for cp in (False, True)}
    for cp, (first, second) in rows.items():
        assert first['with_cp'] is cp and first['tasks'] == 2 and first['batch'] == 1
        assert first['measure'] == 'tensors'
        # byte-exact, run to run; c10's own counter read the second with_cp run 41 % low
        assert first['peak_gib'] == second['peak_gib'] > 0
    assert rows[True][0]['peak_gib'] < rows[False][0]['peak_gib']
    # The model: 4 blocks of 32 dims, float32; weights are outside the step's figure.
    assert rows[False][0]['model_gib'] == rows[True][0]['model_gib'] > 4 * 12 * 32 * 32 * 4 / 2**30


def test_fit_line(tool):
    a, b = tool.fit_line([(1, 3.0), (2, 5.0), (4, 9.0)])
    assert a == pytest.approx(1.0) and b == pytest.approx(2.0)
    assert tool.fit_line([(2, 5.0)]) == (0.0, 2.5)
