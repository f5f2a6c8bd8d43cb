# The vanilla LoRA-MoE of ASE's Table 1 (16/4/0/4: 16 experts, top-4, no shared expert; the
# same active experts per token as ASE 16/3/1/4) on the toy model and data: the twin of
# ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py, one adapter dict apart.
_base_ = ['./ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py']
model = dict(
    backbone=dict(
        adapter=dict(num_experts=16, top_k=4, num_shared=0, rank=4, alpha=4,
                     shared_gating='none')))
