"""tools/analysis/benchmark_moe.py at tiny sizes: JSON schemas of both modes, the loop
references' own checks (they compute the fused layers' function).

No timing is asserted (timings belong to the benchmark, not the tests)."""
import importlib.util
import json
import os.path as osp

import pytest
import torch

from mmase.models.adapters import LoRAExperts, MoELoRAFFN

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis', 'benchmark_moe.py')
TINY = dict(batch=1, tokens=16, channels=32, heads=2)
#: A 4-block ViT of 32 dims at 32x32 pixels (2x2 patches) with 16-channel heads.
TINY_MODEL = dict(arch=dict(embed_dims=32, num_layers=4, num_heads=2), image_size=32,
                  head_channels=16)
MODEL_VARIANTS = {'floor', 'ase:16-3-1-4', 'ase:32-6-2-2', 'ase:64-12-4-1', 'linear:16-3-1-4',
                  'mtl-vit', 'loop:64-12-4-1', 'fgmoe-decoder'}


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('benchmark_moe_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------------
# block mode
def test_result_schema(tool):
    result = tool.run(repeats=1, warmup=0, **TINY)
    assert set(result) == {'plain_ms', 'configs', 'multitask'}
    assert set(result['configs']) == {'16-3-1-4', '32-6-2-2', '64-12-4-1'}
    for row in result['configs'].values():
        assert set(row) == {'ms', 'ratio_to_plain', 'loop_ms', 'loop_over_ours'}
        assert all(value > 0 for value in row.values())
    assert set(result['multitask']) == {'batched_ms', 'sequential_ms'}
    json.dumps(result)  # serialisable as printed by --json


def test_block_configs_use_the_papers_notation(tool):
    """16-3-1-4 builds 16 experts (15 sparse + 1 shared); every config stores 64 ranks."""
    for cfg in tool.EXPERT_CONFIGS:
        qkv = tool.adapted_block(cfg, channels=32, heads=2).attn.qkv
        assert (qkv.num_experts, qkv.num_sparse) == (cfg[0], cfg[0] - cfg[2])
        assert qkv.lora_A.shape[0] == 64
        loop = tool.LoopLoRAExperts.from_fused(qkv)
        assert (len(loop.lora_A), loop.num_sparse) == (cfg[0], cfg[0] - cfg[2])


@pytest.mark.parametrize('dispatch', [True, False])
def test_loop_reference_computes_the_fused_function(tool, dispatch):
    torch.manual_seed(0)
    fused = tool.adapted_block((8, 2, 1, 2), channels=32, heads=2)
    loop = tool.loop_block(fused, dispatch, channels=32, heads=2)
    x = torch.randn(2, 16, 32, requires_grad=True)
    torch.testing.assert_close(tool.call(loop, x, 0), tool.call(fused, x, 0), rtol=1e-5,
                               atol=1e-5)
    # The per-expert weights really are copies: changing one expert changes the output.
    with torch.no_grad():
        loop.attn.qkv.experts.lora_B[3].weight.add_(1.0)
    assert (tool.call(loop, x, 0) - tool.call(fused, x, 0)).abs().max() > 1e-3


@pytest.mark.parametrize('dispatch', [True, False])
def test_loop_experts_match_per_sample_tasks_and_gradients(tool, dispatch):
    """A batch mixing tasks, and the gradients of every expert, router and the input."""
    torch.manual_seed(0)
    fused = LoRAExperts(32, 24, num_tasks=3, num_experts=8, top_k=2, num_shared=2, rank=2)
    with torch.no_grad():
        fused.lora_B.normal_(std=0.1)
    loop = tool.LoopLoRAExperts.from_fused(fused, dispatch)
    x = torch.randn(4, 5, 32)
    task = torch.tensor([2, 0, 2, 1])
    grad_out = torch.randn(4, 5, 24)
    outs, grads = [], []
    for module in (fused, loop):
        x_in = x.clone().requires_grad_(True)
        out = module(x_in, task)
        out.backward(grad_out)
        outs.append(out)
        grads.append(x_in.grad)
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-5)
    r = fused.rank
    for e in range(fused.num_experts):
        torch.testing.assert_close(loop.lora_A[e].weight.grad, fused.lora_A.grad[e * r:(e + 1) * r],
                                   rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(loop.lora_B[e].weight.grad,
                                   fused.lora_B.grad[:, e * r:(e + 1) * r], rtol=1e-5, atol=1e-6)
    for t in range(3):
        torch.testing.assert_close(loop.routers[t].weight.grad, fused.router.weight.grad[t],
                                   rtol=1e-5, atol=1e-6)


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


# ----------------------------------------------------------------------------------------------
# model mode
@pytest.fixture(scope='module')
def tiny_models(tool):
    """The tiny ASE 64/12/4/1 model, its loop twin and preprocessed synthetic data."""
    base = tool.model_config(TINY_MODEL['arch'], TINY_MODEL['image_size'],
                             TINY_MODEL['head_channels'])
    cfg = dict(base)
    cfg['backbone'] = dict(base['backbone'],
                           **tool.model_variants(base['backbone']['adapter'])['ase:64-12-4-1'])
    fused = tool.build_model(cfg)
    loop = tool.loop_model(fused)
    data = fused.data_preprocessor(tool.synthetic_batch(2, TINY_MODEL['image_size']),
                                   training=True)
    return fused, loop, data


def test_model_result_schema(tool):
    result = tool.run_model(repeats=1, warmup=0, **TINY_MODEL)
    assert set(result) == {'step_ms', 'step_over_floor', 'backbone_ms', 'targets', 'ratios'}
    assert set(result['ratios']) == {'fgmoe_decoder_over_ase16'}
    assert result['ratios']['fgmoe_decoder_over_ase16'] > 0
    assert set(result['step_ms']) == MODEL_VARIANTS
    assert set(result['step_over_floor']) == MODEL_VARIANTS - {'floor'}
    assert set(result['backbone_ms']) == {'floor', 'mtl-vit'}
    assert set(result['targets']) == {'ase16_over_floor', 'ase64_over_ase16', 'loop_over_ase64',
                                      'mtl_backbone_over_floor_backbone'}
    for target in result['targets'].values():
        assert set(target) == {'ratio', 'target', 'met'} and isinstance(target['met'], bool)
    for group in ('step_ms', 'step_over_floor', 'backbone_ms'):
        assert all(value > 0 for value in result[group].values())
    json.dumps(result)


def test_model_variants_build_what_they_name(tool):
    base = tool.model_config(TINY_MODEL['arch'], TINY_MODEL['image_size'],
                             TINY_MODEL['head_channels'])
    specs = tool.model_variants(base['backbone']['adapter'])
    assert set(specs) == MODEL_VARIANTS - {'loop:64-12-4-1', 'fgmoe-decoder'}
    built = {}
    for name, overrides in specs.items():
        built[name] = tool.build_model(dict(base, backbone=dict(base['backbone'], **overrides)))
    assert not built['floor'].backbone.task_agnostic  # task embeddings: one batched pass
    assert built['mtl-vit'].backbone.task_agnostic  # one pass feeds all heads
    assert built['floor'].backbone.adapter_names == []
    ffn = built['ase:16-3-1-4'].backbone.blocks[0].mlp
    assert isinstance(ffn, MoELoRAFFN) and ffn.experts.notation() == '16/3/1/4'
    assert built['ase:16-3-1-4'].backbone.lora_names  # plain LoRA beside the experts
    linear = built['linear:16-3-1-4'].backbone
    assert linear.adapter_names[:4] == [f'blocks.0.{n}' for n in
                                        ('attn.qkv', 'attn.proj', 'mlp.fc1', 'mlp.fc2')]


def test_loop_model_computes_the_fused_features_and_trains_the_same(tool, tiny_models):
    fused, loop, data = tiny_models
    assert all(isinstance(m.experts, tool.LoopLoRAExperts) for m in loop.modules()
               if isinstance(m, MoELoRAFFN))
    assert tool.check_loop_model(fused, loop, data['inputs'], 1e-5) < 1e-5
    # One training step: the same losses (the MI loss included), and every loop expert gets
    # the fused expert's gradient (same dropout masks in the heads: same seed).
    losses = []
    for model in (fused, loop):
        torch.manual_seed(0)
        losses.append(model.loss(data['inputs'], data['data_samples']))
    assert 'loss_mi' in losses[0] and set(losses[0]) == set(losses[1])
    for key, value in losses[0].items():
        torch.testing.assert_close(losses[1][key], value, rtol=1e-4, atol=1e-6)
    for model, model_losses in zip((fused, loop), losses):
        sum(v for k, v in model_losses.items() if 'loss' in k).backward()
    ffn, twin = fused.backbone.blocks[1].mlp, loop.backbone.blocks[1].mlp
    r = ffn.experts.rank
    for e in (0, 59, 63):  # a sparse expert, the last sparse one, a shared one
        torch.testing.assert_close(twin.experts.lora_B[e].weight.grad,
                                   ffn.experts.lora_B.grad[:, e * r:(e + 1) * r],
                                   rtol=1e-3, atol=1e-7)
    torch.testing.assert_close(twin.experts.routers[2].weight.grad,
                               ffn.experts.router.weight.grad[2], rtol=1e-3, atol=1e-7)
    fused.zero_grad(set_to_none=True), loop.zero_grad(set_to_none=True)


def test_mismatching_loop_model_is_refused(tool, tiny_models, monkeypatch):
    fused, loop, data = tiny_models
    broken = tool.LoopLoRAExperts.forward
    monkeypatch.setattr(tool.LoopLoRAExperts, 'forward',
                        lambda self, x, task: broken(self, x, task) * 1.5)
    with pytest.raises(RuntimeError, match='loop reference differs'):
        tool.check_loop_model(fused, loop, data['inputs'], 1e-4)


def test_cli_model_json(tool, capsys, monkeypatch):
    real_run_model = tool.run_model
    calls = []

    def tiny_run_model(arch, repeats, **kw):
        calls.append(arch)
        return real_run_model(repeats=repeats, **{**kw, **TINY_MODEL})

    monkeypatch.setattr(tool, 'run_model', tiny_run_model)
    result = tool.main(['--json', '--model', 'vit-s', '--repeats', '1'])
    assert calls == ['vit-s']
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result
    assert set(result) == {'settings', 'archs'} and set(result['archs']) == {'vit-s'}
    assert result['settings']['image_size'] == 224 and result['settings']['tasks'] == 5
    tool.print_model_table(result)
    out = capsys.readouterr().out
    assert 'ase16_over_floor' in out and 'ratio fgmoe_decoder_over_ase16' in out


def test_fgmoe_decoder_variant_is_the_same_vit_frozen(tool):
    cfg = tool.fgmoe_decoder_config(TINY_MODEL['arch'], TINY_MODEL['image_size'],
                                    TINY_MODEL['head_channels'])
    model = tool.build_model(cfg)
    ase = tool.build_model(tool.model_config(TINY_MODEL['arch'], TINY_MODEL['image_size'],
                                             TINY_MODEL['head_channels']))
    encoder = model.backbone.encoder
    assert type(model.backbone).__name__ == 'FrozenEncoderMTDecoder'
    assert encoder.embed_dims == ase.backbone.embed_dims == 32
    assert encoder.out_indices == ase.backbone.out_indices == (0, 1, 2, 3)
    assert not any(p.requires_grad for p in encoder.parameters())
    assert model.backbone.tasks == ase.backbone.tasks and len(model.backbone.tasks) == 5
    data = model.data_preprocessor(tool.synthetic_batch(2, TINY_MODEL['image_size']),
                                   training=True)
    tool.train_step(model, data)  # the segmentor's loss and backward run
