"""LoRA on nn.MultiheadAttention as a weight delta; MoELoRAFFN on channels-first maps and with a
task source (the backwards-compatible options the mmseg wrapper uses)."""
import copy

import pytest
import torch
import torch.nn as nn

from mmase.models.adapters import MoELoRAFFN, MoELoRALinear
from mmase.models.adapters.lora import LoRAMultiheadAttention


@pytest.mark.parametrize('batch_first', [False, True])
def test_lora_attention_is_the_attention_with_merged_weights(batch_first):
    torch.manual_seed(0)
    attn = nn.MultiheadAttention(8, 2, batch_first=batch_first).eval()
    reference = copy.deepcopy(attn)
    lora = LoRAMultiheadAttention(attn, rank=2, alpha=4).eval()
    q, kv = torch.randn(5, 3, 8), torch.randn(4, 3, 8)  # key/value of another length
    if batch_first:
        q, kv = q.transpose(0, 1), kv.transpose(0, 1)
    out, _ = lora(q, kv, kv)
    torch.testing.assert_close(out, reference(q, kv, kv)[0], atol=1e-6, rtol=0)  # B = 0
    with torch.no_grad():
        lora.qkv.lora_B.normal_()
        lora.proj.lora_B.normal_()
        reference.in_proj_weight += 2.0 * lora.qkv.lora_B @ lora.qkv.lora_A  # alpha / r = 2
        reference.out_proj.weight += 2.0 * lora.proj.lora_B @ lora.proj.lora_A
    out, weights = lora(q, kv, kv)
    ref_out, ref_weights = reference(q, kv, kv)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights, ref_weights, atol=1e-6, rtol=1e-6)
    trainable = sorted(n for n, p in lora.named_parameters() if p.requires_grad)
    assert trainable == ['proj.lora_A', 'proj.lora_B', 'qkv.lora_A', 'qkv.lora_B']
    assert 'in_proj_weight' in lora.state_dict() and 'out_proj.weight' in lora.state_dict()


def test_lora_attention_bad_input():
    with pytest.raises(TypeError, match='wraps an nn.MultiheadAttention'):
        LoRAMultiheadAttention(nn.Linear(4, 4))
    with pytest.raises(ValueError, match='targets'):
        LoRAMultiheadAttention(nn.MultiheadAttention(8, 2), targets=('fc1', ))


def test_moe_lora_ffn_channels_first_and_task_source():
    torch.manual_seed(0)
    branch = nn.Sequential(nn.Conv2d(4, 8, 1), nn.GELU(), nn.Conv2d(8, 4, 1))
    task = {'now': torch.tensor([1, 0])}
    layer = MoELoRAFFN(branch, in_features=4, out_features=4, channels_first=True,
                       task_source=lambda: task['now'], num_tasks=2, num_experts=4, top_k=2,
                       num_shared=1, rank=2)
    with torch.no_grad():
        layer.experts.lora_B.normal_()
    x = torch.randn(2, 4, 3, 5)
    tokens = x.flatten(2).transpose(1, 2)
    expected = branch(x) + layer.experts(tokens, task['now']).transpose(1, 2).reshape(2, 4, 3, 5)
    torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(layer(x, torch.tensor([1, 0])), expected)
    with pytest.raises(ValueError, match=r'expects \(N, C, H, W\)'):
        layer(tokens)
    plain = MoELoRAFFN(nn.Sequential(nn.Linear(4, 4)), in_features=4, out_features=4)
    with pytest.raises(TypeError, match='needs a task index'):
        plain(torch.randn(1, 2, 4))


def test_plain_lora_linear_runs_without_a_task():
    lora = MoELoRALinear(nn.Linear(4, 3), num_experts=1, top_k=1, num_shared=0,
                         shared_gating='none')
    x = torch.randn(6, 5, 4)  # e.g. Swin windows: no per-sample task exists
    torch.testing.assert_close(lora(x), lora(x, 0))
    routed = MoELoRALinear(nn.Linear(4, 3), num_tasks=2, num_experts=4, top_k=2, num_shared=0,
                           shared_gating='none')
    with pytest.raises(TypeError, match='needs a task index'):
        routed(x)
