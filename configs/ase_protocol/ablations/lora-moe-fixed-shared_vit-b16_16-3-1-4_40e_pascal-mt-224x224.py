# Fig. 2 "naive shared expert" (16/3/1/4): the shared expert added with weight 1 on top of the
# top-3 softmax (shared_gating='fixed').
# ASE ablation (Sec. 4, Fig. 2/3): 224x224, 40 epochs, ViT-B/16; Δm against the ViT STL
# configs of this folder (stl_reference/pascal_mt_vit-b16_ase-ablation.py), edges by BCE.
_base_ = ['../../_base_/ase_protocol/ablation_vit-b.py']
model = dict(
    backbone=dict(
        adapter=dict(num_experts=16, top_k=3, num_shared=1, rank=4, alpha=4,
                     shared_gating='fixed')))
