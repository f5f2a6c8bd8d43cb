# Table 1 "ASE (32/6/2/2)": 32 LoRA experts of rank 2 beside every FFN, 2 of them
# shared (in N), top-6 of the 30 sparse ones; shared and selected gates in one softmax per
# task router; plain LoRA r=4 on qkv/proj, task embeddings, MI loss. ViT-S/16.
# ASE protocol (224x224, 40 epochs, ImageNet-pretrained ViT-S/16, Δm against the published
# ResNet-18 STL row of Table 1): Li et al., arXiv 2510.00570.
_base_ = ['../_base_/ase_protocol/table1_vit-s.py']
model = dict(
    backbone=dict(
        adapter=dict(num_experts=32, top_k=6, num_shared=2, rank=2, alpha=2,
                     shared_gating='adaptive')))
