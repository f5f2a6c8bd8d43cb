# Task-MoE (Gupta et al., 2022, "Sparsely Activated Mixture-of-Experts are Robust Multi-Task
# Learners"): the MLP of every other block becomes 8 full-MLP experts (upcycled copies of the
# pretrained MLP); one router per task sends each token to its top-2 experts (softmax over the
# two). Attention stays frozen.
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
        adapter=None, lora=None, task_embedding=False,
        mlp_moe=dict(type='TaskMoE', blocks=(1, 3, 5, 7, 9, 11), num_experts=8, top_k=2,
                     gating='task_router', gate_norm='topk', init_noise=0.0,
                     load_balance_weight=0.01)))
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt',
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
