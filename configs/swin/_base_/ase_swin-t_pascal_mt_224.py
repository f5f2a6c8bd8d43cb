# ASE around mmseg's Swin-T (TaskRoutedBackbone), five PASCAL-Context tasks, on the ASE
# protocol's base (224x224 inputs, 40 epochs, protocol 'astmt', Δm against the ResNet-18 STL
# row of Li et al., arXiv 2510.00570, Table 1): the protocol base of mmase's grid, not MTLoRA's
# 448x448 (ours). The frozen Swin-T (mmseg's swin_tiny_patch4_window7_224, ImageNet-1k) gets
# ASE 16/3/1/4 experts beside every FFN (all 4 stages, one router per task and block), plain
# LoRA r=4 on every window attention's qkv/proj, and a task embedding on the patch tokens.
_base_ = [
    '../../_base_/models/ase_vit_pascal_mt.py',
    '../../_base_/datasets/pascal_context_mt_224x224.py',
    '../../_base_/stl_reference/pascal_mt_resnet18_ase.py',
    '../../_base_/default_runtime_epoch.py',
    '../../_base_/schedules/schedule_40e.py',
]
tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
widths = [96, 192, 384, 768]  # Swin-T's four stages
head = dict(in_channels=widths, in_index=[0, 1, 2, 3])
model = dict(
    data_preprocessor=dict(size=(224, 224)),
    backbone=dict(
        _delete_=True,
        type='TaskRoutedBackbone',
        backbone=dict(
            type='SwinTransformer', pretrain_img_size=224, embed_dims=96, patch_size=4,
            window_size=7, mlp_ratio=4, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
            strides=(4, 2, 2, 2), out_indices=(0, 1, 2, 3), qkv_bias=True, patch_norm=True,
            drop_path_rate=0.1,
            # mmseg's name of the file (download it to pretrain/; a local file is required)
            init_cfg=dict(type='Pretrained',
                          checkpoint='pretrain/swin_tiny_patch4_window7_224_20220317-1cdeb081.pth')),
        # the paper's ASE: N/k/S/r = 16/3/1/4 beside every FFN, Mod-Squad MI loss (weight as
        # configs/_base_/models/ase_vit_pascal_mt.py)
        adapter=dict(num_experts=16, top_k=3, num_shared=1, rank=4, alpha=4,
                     shared_gating='adaptive', stages=None, mi_loss_weight=0.005),
        lora=dict(rank=4, alpha=4, targets=('qkv', 'proj')),
        task_embedding=True),
    decode_heads=dict(semseg=head, human_parts=head, sal=head, normals=head, edge=head))
val_evaluator = dict(type='MultiTaskMetric', protocol='astmt',
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
