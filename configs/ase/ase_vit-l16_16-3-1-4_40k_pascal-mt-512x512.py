# ASE 16/3/1/4 on a frozen ViT-L/16 (1024 dims, 24 blocks) at the InvPT family's 512x512 (MLoRE
# and TaskPrompter report ViT-L there): the ViT-B/16 config with arch='vit-l', the heads reading
# blocks 6, 12, 18, 24, and activation checkpointing on (with_cp: every block's activations are
# recomputed in the backward pass; same gradients). Peak step memory against batch size:
# docs/model_zoo.md ("Memory"). No ViT-L single-task reference is shipped: Δm is off.
_base_ = ['./ase_vit-b16_16-3-1-4_40k_pascal-mt-512x512.py']
head_in_channels = [1024] * 4
model = dict(
    backbone=dict(arch='vit-l', out_indices=(5, 11, 17, 23), with_cp=True,
                  pretrained=None),  # or a local timm ViT-L/16 state dict
    decode_heads=dict(
        semseg=dict(in_channels=head_in_channels),
        human_parts=dict(in_channels=head_in_channels),
        sal=dict(in_channels=head_in_channels),
        normals=dict(in_channels=head_in_channels),
        edge=dict(in_channels=head_in_channels)))
val_evaluator = dict(stl_reference=None)
test_evaluator = val_evaluator
