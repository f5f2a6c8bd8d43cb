"""``with_cp``: blocks recomputed in the backward pass give the same outputs and gradients, with
the task index of the pass (batched per-sample tasks included) captured for the recomputation,
on the timm ViT and on an mmseg family (Swin)."""
import copy

import pytest
import torch

from mmase.models.backbones import ASEViT, TaskRoutedBackbone

TASKS = ('semseg', 'sal', 'normals')


def tiny(with_cp, **kwargs):
    torch.manual_seed(0)
    model = ASEViT(arch=dict(embed_dims=32, num_layers=3, num_heads=2), img_size=32,
                   patch_size=8, out_indices=(1, 2), tasks=TASKS, lora=dict(rank=2),
                   task_embedding=True, with_cp=with_cp,
                   adapter=dict(num_experts=4, top_k=2, num_shared=1, rank=2,
                                mi_loss_weight=0.01), **kwargs)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith('lora_B') or name == 'task_embed':
                param.normal_(std=0.1)
    return model.train()


def run(model, x):
    calls = []
    model.blocks[0].norm1.register_forward_pre_hook(lambda *args: calls.append(1))
    feats = model.forward_tasks(x)
    loss = sum((f**2).mean() for maps in feats.values() for f in maps)
    loss = loss + sum(model.pop_aux_losses().values())
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    passes = 1 if model.multitask_mode == 'batched' else len(TASKS)
    assert len(calls) == passes * (2 if model.with_cp else 1)  # recomputed in backward
    return feats, grads


@pytest.mark.parametrize('mode', ['batched', 'sequential'])
def test_checkpointed_blocks_give_the_same_gradients(mode):
    x = torch.randn(2, 3, 32, 32)
    plain_feats, plain_grads = run(tiny(False, multitask_mode=mode), x)
    cp_feats, cp_grads = run(tiny(True, multitask_mode=mode), x)
    for task in TASKS:
        for a, b in zip(plain_feats[task], cp_feats[task]):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert sorted(plain_grads) == sorted(cp_grads) and plain_grads
    for name in plain_grads:
        torch.testing.assert_close(cp_grads[name], plain_grads[name], rtol=1e-6, atol=1e-7,
                                   msg=name)


def swin(with_cp):
    torch.manual_seed(0)
    model = TaskRoutedBackbone(
        backbone=dict(type='SwinTransformer', embed_dims=16, depths=(2, 2), num_heads=(2, 2),
                      window_size=4, strides=(4, 2), out_indices=(0, 1)),
        tasks=TASKS, lora=dict(rank=2), task_embedding=True, with_cp=with_cp,
        adapter=dict(num_experts=4, top_k=2, num_shared=1, rank=2, mi_loss_weight=0.01))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith('lora_B') or name == 'task_embed':
                param.normal_(std=0.1)
    return model.train()


def test_checkpointed_mmseg_blocks_give_the_same_gradients():
    x = torch.randn(2, 3, 32, 32)
    results = []
    for with_cp in (False, True):
        model = swin(with_cp)
        calls = []
        model.backbone.stages[0].blocks[0].norm1.register_forward_pre_hook(
            lambda *args: calls.append(1))
        feats = model.forward_tasks(x)
        loss = sum((f**2).mean() for maps in feats.values() for f in maps)
        (loss + sum(model.pop_aux_losses().values())).backward()
        assert len(calls) == (2 if with_cp else 1)
        results.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert sorted(results[0]) == sorted(results[1]) and results[0]
    for name, grad in results[0].items():
        torch.testing.assert_close(results[1][name], grad, rtol=1e-6, atol=1e-7, msg=name)


def test_a_copy_checkpoints_with_its_own_context():
    model = tiny(True)
    clone = copy.deepcopy(model)
    block = clone.blocks[0]
    assert block.forward.__self__ is block
    assert block._task_context_for_cp is clone.task_context
    x = torch.randn(1, 3, 32, 32)
    clone.forward_tasks(x)['sal'][0].sum().backward()  # recomputes with the copy's context


def test_with_cp_is_checked():
    with pytest.raises(TypeError, match='with_cp must be True or False'):
        tiny('yes')
