"""benchmark_memory.py's step: a tiny ASE backbone trains one step with and without with_cp and
reports a non-negative peak (the figures themselves are measured by running the tool)."""
import importlib.util
import os.path as osp

import pytest

TOOL = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools',
                'analysis', 'benchmark_memory.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('benchmark_memory_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('with_cp', [False, True])
def test_one_step_reports_the_setting(tool, with_cp):
    arch = dict(embed_dims=32, num_layers=2, num_heads=2)
    row = tool.one_step(arch, batch=1, size=32, tasks=2, with_cp=with_cp, device='cpu')
    assert row['with_cp'] is with_cp and row['tasks'] == 2 and row['batch'] == 1
    assert row['peak_gib'] >= 0 and row['seconds'] > 0


def test_the_peak_is_measured_from_the_reset(tool):
    """A transient before the step does not hide the step's peak: the high-water mark is reset."""
    import numpy as np
    big = np.ones(40 * 2**20 // 8)  # 40 MiB touched, then freed: a build's transient
    del big
    before = tool._reset_peak_rss()
    assert tool._status_kib('VmHWM') * 1024 - before < 8 * 2**20
    step = np.ones(20 * 2**20 // 8)  # 20 MiB in the "step"
    peak = tool._status_kib('VmHWM') * 1024 - before
    assert 18 * 2**20 < peak < 40 * 2**20, peak
    del step
