# ase_vit_pascal_mt.py with a ViT-B/16 (768 dims, 12 blocks, 12 heads): the heads read 4 x 768
# channels. Same adapters, heads, loss weights and out_indices (3, 5, 7, 11).
_base_ = ['./ase_vit_pascal_mt.py']
embed_dims = 768
head_in_channels = [embed_dims] * 4
model = dict(
    backbone=dict(arch='vit-b'),
    decode_heads=dict(
        semseg=dict(in_channels=head_in_channels),
        human_parts=dict(in_channels=head_in_channels),
        sal=dict(in_channels=head_in_channels),
        normals=dict(in_channels=head_in_channels),
        edge=dict(in_channels=head_in_channels)))
