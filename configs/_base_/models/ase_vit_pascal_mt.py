# Multi-task ViT with ASE LoRA-MoE adapters and one light decoder per PASCAL-Context task.
embed_dims = 384  # ViT-S; experiment configs override arch and the heads' in_channels together
norm_cfg = dict(type='SyncBN', requires_grad=True)
head_common = dict(in_channels=[embed_dims] * 4, in_index=[0, 1, 2, 3], channels=256,
                   input_transform='resize_concat', num_convs=2, concat_input=False,
                   dropout_ratio=0.1, norm_cfg=norm_cfg, align_corners=False)
model = dict(
    type='MultiTaskEncoderDecoder',
    data_preprocessor=dict(type='MultiTaskDataPreProcessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, size=(512, 512)),
    backbone=dict(
        type='ASEViT',
        arch='vit-s',
        img_size=512,
        patch_size=16,
        out_indices=(3, 5, 7, 11),
        # the paper's ASE (Li et al., 2025): N/k/S/r = 16/3/1/4 LoRA experts beside every FFN
        # (N counts the shared expert), one router per task and block, Mod-Squad MI loss
        # (weight ours: Mod-Squad's 0.005, summed over the 12 expert layers as Mod-Squad does)
        adapter=dict(placement='ffn', num_experts=16, top_k=3, num_shared=1, rank=4, alpha=4,
                     shared_gating='adaptive', blocks=None, mi_loss_weight=0.005),
        # plain LoRA of rank 4 on the attention linears, shared by all tasks
        lora=dict(rank=4, alpha=4, targets=('qkv', 'proj')),
        task_embedding=True,  # x_t = x + e_t before the first block (zero-initialised)
        pretrained=None),  # set a local path to a timm ViT state dict
    decode_heads=dict(
        semseg=dict(type='FCNHead', num_classes=21, **head_common),
        human_parts=dict(type='FCNHead', num_classes=7, **head_common),
        sal=dict(type='BinaryHead', **head_common),
        normals=dict(type='DenseRegressionHead', out_channels=3, **head_common),
        edge=dict(type='BinaryHead',
                  loss_decode=dict(type='BalancedBinaryCrossEntropyLoss', pos_weight=0.95),
                  **head_common)),
    loss_weights=dict(semseg=1.0, human_parts=2.0, sal=5.0, normals=10.0, edge=50.0),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
