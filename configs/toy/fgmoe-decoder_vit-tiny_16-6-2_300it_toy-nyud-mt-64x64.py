# FGMoE as a multi-task decoder on the toy NYUD-v2 set: the NYUD twin of
# fgmoe-decoder_vit-tiny_16-6-2_300it_toy-pascal-mt-64x64.py (frozen tiny random-init ViT, a
# 64-channel decoder of two FGMoE blocks, 16-6-2, the ASE toy's heads).
_base_ = [
    '../_base_/models/ase_vit-tiny_toy_nyud_mt.py',
    '../_base_/datasets/toy_nyud_mt.py',
    '../_base_/stl_reference/toy_nyud_mt.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_toy.py',
]
tasks = ('semseg', 'depth', 'normals', 'edge')
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
# stl_reference comes from the base file: measured with the four toy NYUD STL configs.
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt', edge_tolerance=0.011,
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
