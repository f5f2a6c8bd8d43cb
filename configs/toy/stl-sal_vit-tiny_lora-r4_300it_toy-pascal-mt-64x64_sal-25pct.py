# Low-resource reference: the single-task saliency toy model on the same 25 % of the saliency
# labels as ase_..._sal-25pct.py (label_seed=0).
_base_ = ['./stl-sal_vit-tiny_lora-r4_300it_toy-pascal-mt-64x64.py']
train_dataloader = dict(dataset=dict(label_fraction=dict(sal=0.25), label_seed=0))
