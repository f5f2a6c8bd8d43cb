# Fig. 3(a) top-k sweep, ASE (16/6/1/4): 6 + 1 active experts, against
# lora-moe_vit-b16_16-7-0-4 (the same 7 active experts, no shared one).
# ASE ablation (Sec. 4, Fig. 2/3): 224x224, 40 epochs, ViT-B/16; Δm against the ViT STL
# configs of this folder (stl_reference/pascal_mt_vit-b16_ase-ablation.py), edges by BCE.
_base_ = ['../../_base_/ase_protocol/ablation_vit-b.py']
model = dict(
    backbone=dict(
        adapter=dict(num_experts=16, top_k=6, num_shared=1, rank=4, alpha=4,
                     shared_gating='adaptive')))
