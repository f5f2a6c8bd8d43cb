# the supplementary "ASE (64/12/4/1)": 64 LoRA experts of rank 1 beside every FFN, 4 of them
# shared (in N), top-12 of the 60 sparse ones; shared and selected gates in one softmax per
# task router; plain LoRA r=4 on qkv/proj, task embeddings, MI loss. ViT-S/16.
# ASE protocol (224x224, 40 epochs, ImageNet-pretrained ViT-S/16, Δm against the published
# ResNet-18 STL row of Table 1): Li et al., arXiv 2510.00570.
_base_ = ['../_base_/ase_protocol/table1_vit-s.py']
model = dict(
    backbone=dict(
        adapter=dict(num_experts=64, top_k=12, num_shared=4, rank=1, alpha=1,
                     shared_gating='adaptive')))
