# ASE's "naive shared expert" ablation (16/3/1/4 with the shared expert at weight 1 on top of
# the top-3 softmax) on the toy model and data: the twin of
# ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py, one adapter key apart.
_base_ = ['./ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py']
model = dict(backbone=dict(adapter=dict(shared_gating='fixed')))
