"""A backbone family added by one layout: mmseg's BEiT (and MAE) with ASE experts, plain LoRA
and task embeddings; exact at init, every adapter acting once trained, errors naming fields."""
import copy

import pytest
import torch
from mmseg.registry import MODELS

import mmase  # noqa: F401
from mmase.models.adapters import LoRAExperts, MoELoRAFFN
from mmase.models.backbones import TaskRoutedBackbone

TASKS = ('semseg', 'normals')
BEIT = dict(type='BEiT', img_size=32, patch_size=8, embed_dims=16, num_layers=2, num_heads=2,
            out_indices=(0, 1), qv_bias=False)


def plain_and_file(tmp_path, inner=BEIT):
    torch.manual_seed(0)
    plain = MODELS.build(copy.deepcopy(inner))
    plain.init_weights()
    path = tmp_path / 'beit.pth'
    torch.save(plain.state_dict(), path)
    plain.eval()  # (mmseg's BEiT.train returns None)
    return plain, str(path)


def wrapped(path, inner=BEIT, **kwargs):
    cfg = dict(adapter=dict(num_experts=4, top_k=2, num_shared=1, rank=2), lora=dict(),
               task_embedding=True)
    cfg.update(kwargs)
    torch.manual_seed(1)
    model = TaskRoutedBackbone(
        backbone=dict(inner, init_cfg=dict(type='Pretrained', checkpoint=path)), tasks=TASKS,
        **cfg)
    model.init_weights()
    return model


def test_layout_places_every_adapter(tmp_path):
    _, path = plain_and_file(tmp_path)
    model = wrapped(path)
    assert model.adapter_names == ['layers.0.ffn.layers', 'layers.1.ffn.layers']
    assert model.lora_names == [f'layers.{b}.attn.{t}' for b in (0, 1) for t in ('qkv', 'proj')]
    assert all(isinstance(model.backbone.get_submodule(n), MoELoRAFFN)
               for n in model.adapter_names)
    assert model.task_embed.shape == (2, 16)


def test_fresh_adapters_are_exact_then_act(tmp_path):
    plain, path = plain_and_file(tmp_path)
    model = wrapped(path).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = plain(x)
        feats = model.forward_tasks(x)
        for task in TASKS:
            for out, ref in zip(feats[task], expected):
                torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
        for name, param in model.named_parameters():
            if name.endswith('lora_B') or name == 'task_embed':
                param.normal_(std=0.1)
        feats = model.forward_tasks(x)
    assert not torch.allclose(feats['semseg'][1], feats['normals'][1])
    assert not torch.allclose(feats['semseg'][1], expected[1])


def test_gradients_reach_exactly_the_adapters(tmp_path):
    _, path = plain_and_file(tmp_path)
    model = wrapped(path).train()
    for name, param in model.named_parameters():
        if name.endswith('lora_B'):
            torch.nn.init.normal_(param, std=0.1)
    sum(f.sum() for maps in model.forward_tasks(torch.randn(1, 3, 32, 32)).values()
        for f in maps).backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    adapters = {f'backbone.{m}.{p}' for m, module in model.backbone.named_modules()
                if isinstance(module, LoRAExperts) for p, _ in module.named_parameters()
                if not p.startswith('base_layer.')}
    assert trainable == adapters | {'task_embed'}
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)
    assert all(p.grad is None for n, p in model.named_parameters() if not p.requires_grad)


def test_qkv_used_through_f_linear_is_refused_by_name(tmp_path):
    inner = dict(BEIT, qv_bias=True)  # qkv's weight goes through F.linear: a wrapper never runs
    _, path = plain_and_file(tmp_path, inner)
    with pytest.raises(ValueError, match="lora.targets: BEiT block layers.0 has no 'qkv'"):
        wrapped(path, inner)
    model = wrapped(path, inner, lora=dict(targets=('proj', )))
    assert sorted(model.lora_names) == ['layers.0.attn.proj', 'layers.1.attn.proj']


def test_mae_shares_the_layout():
    inner = {k: v for k, v in BEIT.items() if k != 'qv_bias'}
    model = TaskRoutedBackbone(backbone=dict(inner, type='MAE'), tasks=TASKS,
                               adapter=dict(num_experts=4, top_k=2, num_shared=1, rank=2,
                                            blocks=(1, )))
    assert model.adapter_names == ['layers.1.ffn.layers']
