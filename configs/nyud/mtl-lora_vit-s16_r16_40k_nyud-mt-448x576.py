# Multi-task baseline on NYUD-v2: one plain LoRA of rank 16 per adapted linear, shared by the four
# tasks (no router, no task embedding: the backbone runs once for all tasks), frozen ViT-S/16, one head per task.
_base_ = [
    '../_base_/models/ase_vit_nyud_mt.py',
    '../_base_/datasets/nyud_mt.py',
    '../_base_/stl_reference/nyud_mt_vit-s.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_40k.py',
]
tasks = ('semseg', 'depth', 'normals', 'edge')
model = dict(
    backbone=dict(
        adapter=None, task_embedding=False,  # no router, no task embedding: one pass
        lora=dict(rank=16, alpha=16, targets=('qkv', 'proj', 'fc1', 'fc2'))))
# stl_reference comes from the base file: None (Δm off) until the STL baselines are run.
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt', edge_tolerance=0.011,
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
