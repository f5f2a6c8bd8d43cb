# ASE ViT shrunk for the toy NYUD-v2 dataset (64x64 crops): a 4-block, 64-channel ViT, patch 8,
# trains on a CPU in minutes. The NYUD twin of ase_vit-tiny_toy_pascal_mt.py.
_base_ = ['./ase_vit_nyud_mt.py']
embed_dims = 64
norm_cfg = dict(type='BN', requires_grad=True)
head_common = dict(in_channels=[embed_dims] * 2, in_index=[0, 1], channels=32,
                   input_transform='resize_concat', num_convs=1, concat_input=False,
                   dropout_ratio=0.0, norm_cfg=norm_cfg, align_corners=False)
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=embed_dims, num_layers=4, num_heads=4, mlp_ratio=2.0),
        img_size=64, patch_size=8, out_indices=(1, 3),
        pretrained=None),  # random init on purpose: no weights exist for this toy size
    decode_heads=dict(
        semseg=dict(type='FCNHead', num_classes=40, **head_common),
        depth=dict(type='DenseRegressionHead', out_channels=1,
                   loss_decode=dict(type='DepthL1Loss'), **head_common),
        normals=dict(type='DenseRegressionHead', out_channels=3, **head_common),
        edge=dict(type='BinaryHead',
                  loss_decode=dict(type='BalancedBinaryCrossEntropyLoss', pos_weight=0.95),
                  **head_common)))
