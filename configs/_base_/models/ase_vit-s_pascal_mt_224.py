# ase_vit-b_pascal_mt_224.py with the ImageNet-pretrained ViT-S/16 (384 dims): the paper's text
# names ViT-S, its Table 1 ViT-B (Li et al., arXiv 2510.00570); both are shipped.
_base_ = ['./ase_vit_pascal_mt.py']
model = dict(
    data_preprocessor=dict(size=(224, 224)),
    backbone=dict(img_size=224, pretrained='pretrain/vit_small_patch16_224.pth'))
