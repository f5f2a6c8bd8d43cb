# ASE around SegFormer's MiT-B2 (mmseg's MixVisionTransformer, TaskRoutedBackbone), five
# PASCAL-Context tasks, on the ASE protocol's base (224x224 inputs, 40 epochs, protocol 'astmt',
# Δm against the ResNet-18 STL row of Li et al., arXiv 2510.00570, Table 1; ours). The frozen
# MiT-B2 (mmseg's mit_b2, ImageNet-1k) gets ASE 16/3/1/4 experts beside every MixFFN (they read
# the FFN's input tokens and add sum g_i B_i A_i x' to its output), plain LoRA r=4 on every
# efficient attention's packed qkv and output projection, and a task embedding on the first
# stage's patch tokens.
_base_ = [
    '../../_base_/models/ase_vit_pascal_mt.py',
    '../../_base_/datasets/pascal_context_mt_224x224.py',
    '../../_base_/stl_reference/pascal_mt_resnet18_ase.py',
    '../../_base_/default_runtime_epoch.py',
    '../../_base_/schedules/schedule_40e.py',
]
tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
widths = [64, 128, 320, 512]  # MiT-B2's four stages
head = dict(in_channels=widths, in_index=[0, 1, 2, 3])
model = dict(
    data_preprocessor=dict(size=(224, 224)),
    backbone=dict(
        _delete_=True,
        type='TaskRoutedBackbone',
        backbone=dict(
            type='MixVisionTransformer', in_channels=3, embed_dims=64, num_stages=4,
            num_layers=[3, 4, 6, 3], num_heads=[1, 2, 5, 8], patch_sizes=[7, 3, 3, 3],
            strides=[4, 2, 2, 2], sr_ratios=[8, 4, 2, 1], out_indices=(0, 1, 2, 3),
            mlp_ratio=4, qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1,
            # mmseg's name of the file (download it to pretrain/; a local file is required)
            init_cfg=dict(type='Pretrained', checkpoint='pretrain/mit_b2_20220624-66e8bf70.pth')),
        adapter=dict(num_experts=16, top_k=3, num_shared=1, rank=4, alpha=4,
                     shared_gating='adaptive', stages=None, mi_loss_weight=0.005),
        lora=dict(rank=4, alpha=4, targets=('qkv', 'proj')),
        task_embedding=True),
    decode_heads=dict(semseg=head, human_parts=head, sal=head, normals=head, edge=head))
val_evaluator = dict(type='MultiTaskMetric', protocol='astmt',
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
