# Table 1 "LoRA-MoE (32/8/0/2)": the vanilla LoRA-MoE, 32 experts of rank 2 beside every
# FFN, top-8, no shared expert (8 active, as ASE's 6 + 2); ViT-B/16.
# ASE protocol (224x224, 40 epochs, ImageNet-pretrained ViT-B/16, Δm against the published
# ResNet-18 STL row of Table 1): Li et al., arXiv 2510.00570.
_base_ = ['../_base_/ase_protocol/table1_vit-b.py']
model = dict(
    backbone=dict(
        adapter=dict(num_experts=32, top_k=8, num_shared=0, rank=2, alpha=2,
                     shared_gating='none')))
