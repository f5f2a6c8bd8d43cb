# ASE's "MTL-ViT" on the toy model and data: one ViT shared by the five tasks with plain LoRA
# r=4 on qkv/proj (no expert, no router, no task embedding), the twin of
# ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py without the experts.
_base_ = ['./ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py']
model = dict(backbone=dict(adapter=None, task_embedding=False))
