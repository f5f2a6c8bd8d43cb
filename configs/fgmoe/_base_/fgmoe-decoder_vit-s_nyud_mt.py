# fgmoe-decoder_vit-s_pascal_mt.py on NYUD-v2 (semseg, depth, normals, edge; 448x576 crops): a
# frozen timm ViT-S/16 encoder run once per batch, a 256-channel decoder of two FGMoE blocks
# (16-6-2 slices of 1024 hidden units) run for all four tasks in one batched pass, one light
# head per task.
_base_ = ['../../_base_/models/ase_vit_nyud_mt.py']
encoder_dims = 384
decoder_dims = 256
norm_cfg = dict(type='SyncBN', requires_grad=True)
head_common = dict(in_channels=[decoder_dims] * 2, in_index=[0, 1], channels=256,
                   input_transform='resize_concat', num_convs=1, concat_input=False,
                   dropout_ratio=0.1, norm_cfg=norm_cfg, align_corners=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='FrozenEncoderMTDecoder',
        encoder=dict(type='ASEViT', arch='vit-s', img_size=(448, 576), patch_size=16,
                     out_indices=(3, 5, 7, 11), adapter=None, lora=None,
                     task_embedding=False,  # task-agnostic: its default tasks do
                     pretrained='pretrain/vit_small_patch16_384.pth'),  # a local timm ViT-S/16
        decoder=dict(type='FGMoEDecoder', in_channels=[encoder_dims] * 4,
                     embed_dims=decoder_dims, num_blocks=2, num_heads=8, mlp_ratio=4.0,
                     fuse_index=-1, out_indices=(0, 1),
                     mlp_moe=dict(num_experts=16, top_k=6, num_shared=2, global_expert=True,
                                  task_specific_experts=True, train_global_expert=True,
                                  load_balance_weight=0.01))),
    decode_heads=dict(
        semseg=dict(type='FCNHead', num_classes=40, **head_common),
        depth=dict(type='DenseRegressionHead', out_channels=1,
                   loss_decode=dict(type='DepthL1Loss'), **head_common),
        normals=dict(type='DenseRegressionHead', out_channels=3, **head_common),
        edge=dict(type='BinaryHead',
                  loss_decode=dict(type='BalancedBinaryCrossEntropyLoss', pos_weight=0.95),
                  **head_common)))
