"""Writes the legacy-model fixtures: tiny models of the pre-redesign code (commit d05e05f) with
random weights, their inputs and outputs, so that later code can be checked to load them
strictly and give the same outputs.

Run once from the repository root (the files are committed; do not regenerate them with newer
code, that would defeat their purpose):

    python tests/test_models/legacy/make_fixtures.py

Each ``<name>.pth`` holds ``config`` (the registry config the model was built from),
``state_dict``, ``inputs`` ``(2, 3, 32, 32)`` and ``outputs`` (task -> list of maps, eval mode,
``forward_tasks`` of every task).
"""
import copy
import os.path as osp

import torch
from mmseg.registry import MODELS

import mmase  # noqa: F401

HERE = osp.dirname(osp.abspath(__file__))
TASKS = ('semseg', 'sal', 'normals')
TINY_VIT = dict(embed_dims=32, num_layers=2, num_heads=2)

SWIN = dict(type='SwinTransformer', embed_dims=16, depths=(2, 2), num_heads=(2, 2),
            window_size=4, strides=(4, 2), out_indices=(0, 1), drop_path_rate=0.0)
MIT = dict(type='MixVisionTransformer', embed_dims=8, num_stages=2, num_layers=[1, 1],
           num_heads=[1, 2], patch_sizes=[7, 3], strides=[4, 2], sr_ratios=[2, 1],
           out_indices=(0, 1))

#: name -> the config the old code built (only keys that exist before the redesign).
CONFIGS = {
    'ase_vit_16-3-1-4': dict(
        type='ASEViT', arch=TINY_VIT, img_size=32, patch_size=8, out_indices=(0, 1),
        tasks=TASKS, adapter=dict(num_experts=16, top_k=3, num_shared=1, rank=4),
        lora=dict(rank=4), task_embedding=True),
    'ase_vit_linear_placement': dict(
        type='ASEViT', arch=TINY_VIT, img_size=32, patch_size=8, out_indices=(0, 1),
        tasks=TASKS, adapter=dict(placement='linear', num_experts=4, top_k=2, num_shared=1,
                                  rank=2, shared_gating='fixed'),
        task_embedding=('sal', )),
    'task_moe_vit': dict(
        type='ASEViT', arch=TINY_VIT, img_size=32, patch_size=8, out_indices=(1, ),
        tasks=TASKS, adapter=None, lora=dict(rank=2),
        mlp_moe=dict(type='TaskMoE', num_experts=4, top_k=2, gating='task_router',
                     gate_norm='topk')),
    'fgmoe_encoder_vit': dict(
        type='ASEViT', arch=TINY_VIT, img_size=32, patch_size=8, out_indices=(1, ),
        tasks=TASKS, adapter=None, lora=dict(rank=2), task_embedding=True,
        mlp_moe=dict(type='FGMoE', num_experts=4, top_k=2, num_shared=1, blocks=(1, ))),
    'task_routed_swin': dict(
        type='TaskRoutedBackbone', backbone=SWIN, tasks=TASKS,
        experts=dict(num_experts=4, top_k=2, num_shared=1, rank=2), lora=dict(rank=2)),
    'task_routed_mit': dict(
        type='TaskRoutedBackbone', backbone=MIT, tasks=TASKS,
        experts=dict(num_experts=4, top_k=2, num_shared=1, rank=2, stages=(1, )),
        lora=dict(rank=2), task_embedding=('semseg', 'normals')),
    'fgmoe_decoder': dict(
        type='FrozenEncoderMTDecoder', tasks=TASKS, probe_size=32,
        encoder=dict(type='ASEViT', arch=TINY_VIT, img_size=32, patch_size=8,
                     out_indices=(0, 1), adapter=None, lora=None, task_embedding=False),
        decoder=dict(type='FGMoEDecoder', in_channels=[32, 32], embed_dims=16, num_blocks=2,
                     num_heads=2, mlp_ratio=2.0,
                     mlp_moe=dict(num_experts=4, top_k=2, num_shared=1))),
}


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Every parameter drawn anew (experts' B included), so that every
    part of the model acts on the output."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.parameters():
            tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))


def outputs_of(model, inputs):
    model.eval()
    with torch.no_grad():
        feats = model.forward_tasks(inputs)
    return {task: [f.clone() for f in maps] for task, maps in feats.items()}


def main():
    for seed, (name, config) in enumerate(sorted(CONFIGS.items())):
        torch.manual_seed(seed)
        model = MODELS.build(copy.deepcopy(config))
        randomise(model, seed)
        inputs = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(100 + seed))
        outputs = outputs_of(model, inputs)
        torch.save(dict(config=config, state_dict=model.state_dict(), inputs=inputs,
                        outputs=outputs), osp.join(HERE, f'{name}.pth'))
        print(name, {t: [tuple(o.shape) for o in maps] for t, maps in outputs.items()})


if __name__ == '__main__':
    torch.set_num_threads(1)
    main()
