# Fig. 3(a) top-k sweep, baseline (16/7/0/4) beside ase_vit-b16_16-6-1-4.
# ASE ablation (Sec. 4, Fig. 2/3): 224x224, 40 epochs, ViT-B/16; Δm against the ViT STL
# configs of this folder (stl_reference/pascal_mt_vit-b16_ase-ablation.py), edges by BCE.
_base_ = ['../../_base_/ase_protocol/ablation_vit-b.py']
model = dict(
    backbone=dict(
        adapter=dict(num_experts=16, top_k=7, num_shared=0, rank=4, alpha=4,
                     shared_gating='none')))
