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
