# Table 1 "LoRA-MoE (16/4/0/4)": the vanilla LoRA-MoE, 16 experts of rank 4 beside every
# FFN, top-4, no shared expert (4 active, as ASE's 3 + 1); ViT-B/16.
# ASE protocol (224x224, 40 epochs, ImageNet-pretrained ViT-B/16, Δm against the published
# ResNet-18 STL row of Table 1): Li et al., arXiv 2510.00570.
_base_ = ['../_base_/ase_protocol/table1_vit-b.py']
model = dict(
    backbone=dict(
        adapter=dict(num_experts=16, top_k=4, num_shared=0, rank=4, alpha=4,
                     shared_gating='none')))
