# MTL-shared baseline of ase_mit-b2_16-3-1-4: the same frozen MiT-B2 shared by the five tasks,
# plain LoRA r=4 on the attention projections only (no expert, no router, no task embedding: the
# backbone runs once per batch for all tasks). ASE protocol base (224x224, 40 epochs).
_base_ = ['./_base_/ase_mit-b2_pascal_mt_224.py']
model = dict(backbone=dict(adapter=None, task_embedding=False))
