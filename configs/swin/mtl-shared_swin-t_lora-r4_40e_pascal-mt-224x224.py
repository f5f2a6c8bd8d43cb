# MTL-shared baseline of ase_swin-t_16-3-1-4: the same frozen Swin-T shared by the five tasks,
# plain LoRA r=4 on qkv/proj only (no expert, no router, no task embedding: the backbone runs
# once per batch for all tasks). ASE protocol base (224x224, 40 epochs).
_base_ = ['./_base_/ase_swin-t_pascal_mt_224.py']
model = dict(backbone=dict(adapter=None, task_embedding=False))
