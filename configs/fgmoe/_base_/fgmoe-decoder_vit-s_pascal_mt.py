# FGMoE as a multi-task decoder on a frozen encoder (our reading of arXiv 2507.19077, see
# configs/fgmoe/README.md): a frozen, task-agnostic timm ViT-S/16 (no adapter, no LoRA, no task
# embedding) runs once per batch; its four maps (blocks 3, 5, 7, 11) are projected to 256
# channels and summed (one 1/16 scale), two transformer blocks whose MLPs are FGMoE layers
# (N-k-S = 16-6-2 slices of the 1024 hidden units, per-task slices and routers, a trainable
# global expert) run for all tasks in one batched pass, and one light head per task reads the
# two decoder blocks' maps. Only the decoder and the heads train.
_base_ = ['../../_base_/models/ase_vit_pascal_mt.py']
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
        encoder=dict(type='ASEViT', arch='vit-s', img_size=512, patch_size=16,
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
        semseg=dict(type='FCNHead', num_classes=21, **head_common),
        human_parts=dict(type='FCNHead', num_classes=7, **head_common),
        sal=dict(type='BinaryHead', **head_common),
        normals=dict(type='DenseRegressionHead', out_channels=3, **head_common),
        edge=dict(type='BinaryHead',
                  loss_decode=dict(type='BalancedBinaryCrossEntropyLoss', pos_weight=0.95),
                  **head_common)))
