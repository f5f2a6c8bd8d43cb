"""Merging plain LoRA into the frozen weights (PEFT's merge / unmerge): same outputs, the adapter
path skipped, the exact weights back after unmerge, unmerged weights in the state dict, routed
experts refused, training refused while merged."""
import pytest
import torch
import torch.nn as nn

from mmase.models.adapters import (LoRAExperts, LoRALinear, MoELoRALinear, merge_lora,
                                   unmerge_lora)
from mmase.models.adapters.lora import LoRAMultiheadAttention
from mmase.models.backbones import ASEViT


def _randomise(module, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, LoRAExperts):
                sub.lora_B.copy_(0.1 * torch.randn(sub.lora_B.shape, generator=generator))


def test_linear_merge_folds_the_delta_and_unmerge_restores_it():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(16, 8), rank=4, alpha=8)
    _randomise(layer)
    x = torch.randn(3, 5, 16)
    weight = layer.base_layer.weight.detach().clone()
    expected = layer(x)
    layer.eval()
    layer.merge()
    assert layer.merged
    # W0 + (alpha / r) B A, by hand
    torch.testing.assert_close(layer.base_layer.weight,
                               weight + 2.0 * layer.lora_B @ layer.lora_A)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # merged: the factors no longer take part
        layer.lora_B.mul_(100)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        layer.lora_B.div_(100)
    layer.merge()  # idempotent
    layer.unmerge()
    assert not layer.merged
    torch.testing.assert_close(layer.base_layer.weight, weight, rtol=0, atol=1e-7)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)


def test_state_dict_of_a_merged_layer_holds_the_unmerged_weight():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(16, 8), rank=2)
    _randomise(layer)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    layer.merge()
    after = layer.state_dict()
    assert after.keys() == before.keys()
    for key in before:
        torch.testing.assert_close(after[key], before[key], rtol=0, atol=1e-7)
    fresh = LoRALinear(nn.Linear(16, 8), rank=2)
    fresh.load_state_dict(after)  # loads into an unmerged layer with the same outputs
    x = torch.randn(4, 16)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), layer(x), rtol=1e-5, atol=1e-6)


def test_routed_experts_and_training_are_refused():
    routed = MoELoRALinear(nn.Linear(16, 8), num_tasks=2, num_experts=4, top_k=2,
                           num_shared=1, rank=2)
    assert not routed.mergeable
    with pytest.raises(RuntimeError, match='only plain LoRA'):
        routed.merge()
    assert not routed.merged
    layer = LoRALinear(nn.Linear(16, 8), rank=2)
    layer.merge()
    layer.train()
    with pytest.raises(RuntimeError, match='call unmerge'):
        layer(torch.randn(2, 16))
    with torch.no_grad():  # inference in train mode is fine
        layer(torch.randn(2, 16))


def test_multihead_attention_merge():
    torch.manual_seed(0)
    attn = LoRAMultiheadAttention(nn.MultiheadAttention(16, 2, batch_first=True), rank=2)
    _randomise(attn)
    attn.eval()
    x = torch.randn(2, 7, 16)
    expected = attn(x, x, x)[0]
    in_w, out_w = attn.in_proj_weight.detach().clone(), attn.out_proj.weight.detach().clone()
    attn.merge()
    torch.testing.assert_close(attn.in_proj_weight, in_w + attn._delta(attn.qkv))
    torch.testing.assert_close(attn(x, x, x)[0], expected, rtol=1e-5, atol=1e-6)
    state = attn.state_dict()
    torch.testing.assert_close(state['in_proj_weight'], in_w, rtol=0, atol=1e-7)
    torch.testing.assert_close(state['out_proj.weight'], out_w, rtol=0, atol=1e-7)
    attn.unmerge()
    torch.testing.assert_close(attn.out_proj.weight, out_w, rtol=0, atol=1e-7)


def test_merge_lora_over_a_model_merges_plain_lora_only():
    torch.manual_seed(0)
    model = ASEViT(arch=dict(embed_dims=32, num_layers=2, num_heads=2), img_size=32,
                   patch_size=8, out_indices=(0, 1), tasks=('semseg', 'sal'),
                   adapter=dict(num_experts=4, top_k=2, num_shared=1, rank=2),
                   lora=dict(rank=2), task_embedding=True)
    _randomise(model)
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model.forward_tasks(x, ('semseg', 'sal'))
        names = merge_lora(model)
        merged = model.forward_tasks(x, ('semseg', 'sal'))
    # the attention's plain LoRA (qkv, proj of both blocks); the routed FFN experts stay
    assert sorted(names) == ['blocks.0.attn.proj', 'blocks.0.attn.qkv', 'blocks.1.attn.proj',
                             'blocks.1.attn.qkv']
    for task in expected:
        for a, b in zip(expected[task], merged[task]):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert sorted(unmerge_lora(model)) == sorted(names)
