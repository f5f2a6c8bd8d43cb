# Table 1 "MTL-ViT": one frozen ViT-S/16 shared by the five tasks, plain LoRA r=4 on qkv/proj
# (no expert, no router, no task embedding: the backbone runs once per batch for all tasks).
# ASE protocol (224x224, 40 epochs, ImageNet-pretrained ViT-S/16, Δm against the published
# ResNet-18 STL row of Table 1): Li et al., arXiv 2510.00570.
_base_ = ['../_base_/ase_protocol/table1_vit-s.py']
model = dict(backbone=dict(adapter=None, task_embedding=False))
