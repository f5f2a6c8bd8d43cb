"""tools/analysis/benchmark_moe.py at tiny sizes: JSON schema, the loop reference's own check.

No timing is asserted (timings belong to the benchmark, not the tests)."""
import importlib.util
import json
import os.path as osp

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis', 'benchmark_moe.py')
TINY = dict(batch=1, tokens=16, channels=32, heads=2)


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('benchmark_moe_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_result_schema(tool):
    result = tool.run(repeats=1, warmup=0, **TINY)
    assert set(result) == {'plain_ms', 'configs', 'multitask'}
    assert set(result['configs']) == {'16-3-1-4', '32-6-2-2', '64-12-4-1'}
    for row in result['configs'].values():
        assert set(row) == {'ms', 'ratio_to_plain', 'loop_ms', 'loop_over_ours'}
        assert all(value > 0 for value in row.values())
    assert set(result['multitask']) == {'batched_ms', 'sequential_ms'}
    json.dumps(result)  # serialisable as printed by --json


@pytest.mark.parametrize('dispatch', [True, False])
def test_loop_reference_computes_the_fused_function(tool, dispatch):
    torch.manual_seed(0)
    fused = tool.adapted_block((8, 2, 1, 2), channels=32, heads=2)
    loop = tool.loop_block(fused, dispatch, channels=32, heads=2)
    x = torch.randn(2, 16, 32, requires_grad=True)
    torch.testing.assert_close(loop(x, 0), fused(x, 0), rtol=1e-5, atol=1e-5)
    # The per-expert weights really are copies: changing one expert changes the output.
    with torch.no_grad():
        loop.attn.qkv.lora_B[3].weight.add_(1.0)
    assert (loop(x, 0) - fused(x, 0)).abs().max() > 1e-3


def test_mismatching_reference_is_refused(tool, monkeypatch):
    broken = tool.LoopMoELoRALinear.forward

    def off_by_one(self, x, task):
        return broken(self, x, task) + 1.0

    monkeypatch.setattr(tool.LoopMoELoRALinear, 'forward', off_by_one)
    with pytest.raises(RuntimeError, match='loop reference differs'):
        tool.run(repeats=1, warmup=0, **TINY)


def test_cli_json(tool, capsys, monkeypatch):
    real_run = tool.run
    monkeypatch.setattr(tool, 'run', lambda repeats, **kw: real_run(repeats, **{**kw, **TINY}))
    result = tool.main(['--json', '--repeats', '1'])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the no-CUDA message')
def test_cuda_without_a_gpu_is_an_error(tool, capsys):
    with pytest.raises(SystemExit):
        tool.main(['--device', 'cuda'])
    assert '--device cuda: CUDA is not available' in capsys.readouterr().err
