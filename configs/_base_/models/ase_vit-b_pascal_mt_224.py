# The ASE protocol's model (Li et al., arXiv 2510.00570, Sec. 4): ase_vit-b_pascal_mt.py at 224x224
# inputs (14x14 patches of 16 px) with the ImageNet-pretrained ViT-B/16 from a local timm state dict
# (nothing is downloaded; a missing file is an error, see docs/get_started.md for how to save one).
# The backbone is the paper's: N/k/S/r LoRA experts beside every FFN, plain LoRA r=4 on qkv/proj,
# task embeddings, Mod-Squad MI router loss (ase_vit_pascal_mt.py). The heads are not specified by
# the paper: ours, mmase's FCN-style heads of the 512x512 grid.
_base_ = ['./ase_vit-b_pascal_mt.py']
model = dict(
    data_preprocessor=dict(size=(224, 224)),
    backbone=dict(img_size=224, pretrained='pretrain/vit_base_patch16_224.pth'))
