# Low-resource transfer (Task-MoE): the toy ASE model on the five tasks with saliency labels on
# only 25 % of the training images (a fixed seeded subset, label_seed=0); the others are fully
# labelled. Compare with stl-sal_..._sal-25pct.py (the same 25 % of saliency labels alone).
_base_ = ['./ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py']
train_dataloader = dict(dataset=dict(label_fraction=dict(sal=0.25), label_seed=0))
