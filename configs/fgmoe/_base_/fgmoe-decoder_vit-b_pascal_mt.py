# fgmoe-decoder_vit-s_pascal_mt.py with a frozen ViT-B/16 encoder (768 channels) and a
# 384-channel decoder (16 slices of the 1536 hidden units, 8 heads).
_base_ = ['./fgmoe-decoder_vit-s_pascal_mt.py']
encoder_dims = 768
decoder_dims = 384
head_in_channels = [decoder_dims] * 2
model = dict(
    backbone=dict(
        encoder=dict(arch='vit-b', pretrained='pretrain/vit_base_patch16_384.pth'),
        decoder=dict(in_channels=[encoder_dims] * 4, embed_dims=decoder_dims)),
    decode_heads=dict(
        semseg=dict(in_channels=head_in_channels),
        human_parts=dict(in_channels=head_in_channels),
        sal=dict(in_channels=head_in_channels),
        normals=dict(in_channels=head_in_channels),
        edge=dict(in_channels=head_in_channels)))
