# Table 1 "ASE (16/3/1/4)": 16 LoRA experts of rank 4 beside every FFN, 1 of them
# shared (in N), top-3 of the 15 sparse ones; shared and selected gates in one softmax per
# task router; plain LoRA r=4 on qkv/proj, task embeddings, MI loss. ViT-B/16.
# ASE protocol (224x224, 40 epochs, ImageNet-pretrained ViT-B/16, Δm against the published
# ResNet-18 STL row of Table 1): Li et al., arXiv 2510.00570.
_base_ = ['../_base_/ase_protocol/table1_vit-b.py']
model = dict(
    backbone=dict(
        adapter=dict(num_experts=16, top_k=3, num_shared=1, rank=4, alpha=4,
                     shared_gating='adaptive')))
