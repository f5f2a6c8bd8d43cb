# Multi-task baseline: one plain LoRA of rank 16 per adapted linear, shared by the five tasks
# (no router, no task embedding: the backbone runs once for all tasks), frozen ViT-S/16, one head per task.
_base_ = [
    '../_base_/models/ase_vit_pascal_mt.py',
    '../_base_/datasets/pascal_context_mt.py',
    '../_base_/stl_reference/pascal_mt_vit-s.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_40k.py',
]
tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
model = dict(
    backbone=dict(
        adapter=None, task_embedding=False,  # no router, no task embedding: one pass
        lora=dict(rank=16, alpha=16, targets=('qkv', 'proj', 'fc1', 'fc2'))))
# stl_reference comes from the base file: None (Δm off) until the STL baselines are run.
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt',
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
