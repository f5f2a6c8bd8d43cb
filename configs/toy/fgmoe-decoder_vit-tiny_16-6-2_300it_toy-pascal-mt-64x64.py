# FGMoE as a multi-task decoder (our reading of arXiv 2507.19077, configs/fgmoe/README.md) on the
# toy PASCAL-Context set: the ASE toy's tiny random-init ViT (4 blocks, 64 channels, patch 8,
# maps of blocks 1 and 3) frozen and run once per batch, a 64-channel decoder of two FGMoE blocks
# (16-6-2 slices of the 128 hidden units, trainable global expert) run for the five tasks in one
# batched pass, the ASE toy's heads on the two decoder maps. Only the decoder and heads train.
_base_ = [
    '../_base_/models/ase_vit-tiny_toy_pascal_mt.py',
    '../_base_/datasets/toy_pascal_mt.py',
    '../_base_/stl_reference/toy_pascal_mt.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_toy.py',
]
tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
model = dict(
    backbone=dict(
        _delete_=True,
        type='FrozenEncoderMTDecoder',
        encoder=dict(type='ASEViT', arch=dict(embed_dims=64, num_layers=4, num_heads=4,
                                              mlp_ratio=2.0),
                     img_size=64, patch_size=8, out_indices=(1, 3), adapter=None, lora=None,
                     task_embedding=False,
                     pretrained=None),  # random init on purpose, as the ASE toy's ViT
        decoder=dict(type='FGMoEDecoder', in_channels=[64, 64], embed_dims=64, num_blocks=2,
                     num_heads=4, mlp_ratio=2.0, out_indices=(0, 1),
                     mlp_moe=dict(num_experts=16, top_k=6, num_shared=2, global_expert=True,
                                  task_specific_experts=True, train_global_expert=True,
                                  load_balance_weight=0.01))))
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt',
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
