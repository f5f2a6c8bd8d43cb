# Multi-task baseline: the paper's vanilla LoRA-MoE, no shared experts: N/k/S/r = 16/4/0/4
# (16 experts of rank 4 beside every FFN, top-4, one router per task and block), the same 4
# active experts per token as ASE 16/3/1/4; frozen ViT-S/16, one head per task.
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
        adapter=dict(num_experts=16, top_k=4, num_shared=0, rank=4, alpha=4,
                     shared_gating='none')))
# stl_reference comes from the base file: None (Δm off) until the STL baselines are run.
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt',
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
