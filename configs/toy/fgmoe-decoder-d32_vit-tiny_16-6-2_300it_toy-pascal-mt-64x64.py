# fgmoe-decoder_vit-tiny_16-6-2_300it_toy-pascal-mt-64x64.py with a 32-channel decoder (MLP hidden
# 128: 16 slices of 8 units): fewer trainable parameters than the ASE toy (0.21 M against
# 0.25 M), for a comparison at a smaller trainable budget.
_base_ = ['./fgmoe-decoder_vit-tiny_16-6-2_300it_toy-pascal-mt-64x64.py']
decoder_maps = [32, 32]
model = dict(
    backbone=dict(decoder=dict(embed_dims=32, num_heads=2, mlp_ratio=4.0)),
    decode_heads=dict(
        semseg=dict(in_channels=decoder_maps),
        human_parts=dict(in_channels=decoder_maps),
        sal=dict(in_channels=decoder_maps),
        normals=dict(in_channels=decoder_maps),
        edge=dict(in_channels=decoder_maps)))
