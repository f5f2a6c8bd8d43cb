"""FGMoEDecoder: fusion by hand, the blocks against a plain ViT block, per-task batching,
what trains, errors naming the field."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

import mmase  # noqa: F401  (registers the modules)
from mmase.models.adapters import FGMoE
from mmase.models.backbones.vit_layers import Block
from mmase.models.decoders import FGMoEDecoder

MOE = dict(num_experts=4, top_k=2, num_shared=1)


def decoder(**kwargs):
    cfg = dict(in_channels=[8, 16], num_tasks=3, embed_dims=16, num_blocks=2, num_heads=2,
               mlp_ratio=2.0, mlp_moe=dict(MOE))
    cfg.update(kwargs)
    torch.manual_seed(0)
    return FGMoEDecoder(**cfg)


def maps(n=2):
    g = torch.Generator().manual_seed(1)
    return (torch.randn(n, 8, 8, 8, generator=g), torch.randn(n, 16, 4, 4, generator=g))


def test_fuse_projects_resizes_and_sums_by_hand():
    module = decoder(fuse_index=-1)
    feats = maps()
    tokens, grid = module.fuse(feats)
    assert grid == (4, 4) and tokens.shape == (2, 16, 16)
    # level 0 (8x8) resized to level 1's 4x4; level 1 as it is; summed, then LayerNorm
    p0 = F.conv2d(feats[0], module.projections[0].weight, module.projections[0].bias)
    p1 = F.conv2d(feats[1], module.projections[1].weight, module.projections[1].bias)
    fused = F.interpolate(p0, size=(4, 4), mode='bilinear', align_corners=False) + p1
    expected = F.layer_norm(fused.flatten(2).transpose(1, 2), (16, ),
                            module.fuse_norm.weight, module.fuse_norm.bias, eps=1e-6)
    torch.testing.assert_close(tokens, expected)
    # fused at the finer scale instead
    tokens, grid = decoder(fuse_index=0).fuse(feats)
    assert grid == (8, 8) and tokens.shape == (2, 64, 16)


def test_blocks_with_unit_gates_are_plain_vit_blocks():
    # Zero routers and top_k = every routed slice: the FGMoE MLP is the dense MLP (slices at
    # gate 1, global gate 1/2 mixing two copies of it), so each block is a plain ViT block.
    module = decoder(mlp_moe=dict(num_experts=4, top_k=3, num_shared=1))
    for block in module.blocks:
        nn.init.zeros_(block.mlp.router.weight)
    tokens, grid = module.fuse(maps())
    x, expected = tokens, []
    for block, norm in zip(module.blocks, module.out_norms):
        plain = Block(16, 2, 2.0)
        plain.load_state_dict({k: v for k, v in block.state_dict().items()
                               if not k.startswith('mlp.')}, strict=False)
        plain.mlp.fc1.load_state_dict(block.mlp.fc1.state_dict())
        plain.mlp.fc2.load_state_dict(block.mlp.fc2.state_dict())
        x = plain(x)
        expected.append(norm(x).transpose(1, 2).reshape(2, 16, *grid))
    outs = module.decode(tokens, grid, 1)
    assert len(outs) == 2
    for out, ref in zip(outs, expected):
        torch.testing.assert_close(out, ref)


def test_per_sample_tasks_equal_per_task_calls():
    module = decoder()
    tokens, grid = module.fuse(maps(n=2))
    batched = module.decode(tokens.repeat(3, 1, 1), grid, torch.arange(3).repeat_interleave(2))
    for task in range(3):
        alone = module.decode(tokens, grid, task)
        for out, ref in zip(batched, alone):
            torch.testing.assert_close(out[2 * task:2 * task + 2], ref, rtol=1e-5, atol=1e-5)
    # the tasks' routers differ, so do their features
    assert not torch.allclose(batched[-1][:2], batched[-1][2:4])


def test_everything_trains_and_the_global_expert_is_the_blocks_mlp():
    module = decoder(out_indices=(1, ))
    assert all(isinstance(b.mlp, FGMoE) and b.mlp.train_global_expert for b in module.blocks)
    assert all(p.requires_grad for p in module.parameters())
    outs = module(maps(), torch.tensor([0, 2]))
    assert len(outs) == 1 and outs[0].shape == (2, 16, 4, 4)
    outs[0].square().sum().backward()
    for name, param in module.named_parameters():
        if 'router' in name or 'expert_' in name:
            continue  # checked below: per-task tensors, the unused task gets none
        assert param.grad is not None and torch.count_nonzero(param.grad) > 0, name
    for block in module.blocks:
        grad = block.mlp.expert_fc1_weight.grad
        assert [bool(torch.count_nonzero(grad[t])) for t in range(3)] == [True, False, True]
    assert module.routed_layer_names == ('blocks.0.mlp', 'blocks.1.mlp')


def test_router_loss_weights_switch_the_layers_losses():
    module = decoder(mlp_moe=dict(MOE, load_balance_weight=0.5, mi_loss_weight=0.1))
    assert module.load_balance_weight == 0.5 and module.mi_loss_weight == 0.1
    assert all(b.mlp.load_balance and b.mlp.mutual_information for b in module.blocks)
    plain = decoder()
    assert not any(b.mlp.load_balance or b.mlp.mutual_information for b in plain.blocks)


def test_build_from_registry():
    module = MODELS.build(dict(type='FGMoEDecoder', in_channels=[8], num_tasks=2, embed_dims=16,
                               num_heads=2, mlp_moe=dict(MOE)))
    assert isinstance(module, FGMoEDecoder) and module.hidden_dims == 64
    assert module.blocks[0].mlp.slice_size == 16


@pytest.mark.parametrize('kwargs,error,message', [
    (dict(mlp_moe=dict(num_experts=5, top_k=2, num_shared=1)), ValueError,
     'mlp_moe.num_experts=5 does not divide the MLP hidden size 32'),
    (dict(mlp_moe=dict(MOE, experts=3)), ValueError, r"mlp_moe: unknown keys \['experts'\]"),
    (dict(mlp_moe=dict(MOE, load_balance_weight=-1)), ValueError,
     'mlp_moe.load_balance_weight=-1 must be a number >= 0'),
    (dict(embed_dims=15), ValueError, 'embed_dims=15 is not divisible by num_heads=2'),
    (dict(in_channels=8), TypeError, 'in_channels must be a non-empty list'),
    (dict(in_channels=[8, 0]), ValueError, r'in_channels=\[8, 0\]: 0 is not a positive int'),
    (dict(fuse_index=2), ValueError, 'fuse_index=2 is not an index of the 2 encoder'),
    (dict(out_indices=(2, )), ValueError, 'out_indices: 2 is not a block index of a 2-block'),
    (dict(num_tasks=0), ValueError, 'num_tasks=0 must be >= 1'),
    (dict(num_blocks=0), ValueError, 'num_blocks=0 must be >= 1'),
])
def test_build_errors_name_the_field(kwargs, error, message):
    with pytest.raises(error, match=message):
        decoder(**kwargs)


def test_feature_maps_of_other_widths_are_refused():
    module = decoder()
    with pytest.raises(ValueError, match=r'in_channels=\[8, 16\] does not match the widths '
                       r'\[8, 8\]'):
        module.fuse((torch.randn(1, 8, 4, 4), torch.randn(1, 8, 4, 4)))
    with pytest.raises(ValueError, match='gives 1 feature maps but in_channels'):
        module.fuse((torch.randn(1, 8, 4, 4), ))
