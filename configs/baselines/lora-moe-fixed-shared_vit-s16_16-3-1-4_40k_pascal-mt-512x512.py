# Multi-task baseline: LoRA mixture of experts with a naive shared expert (16/3/1/4): the top-3
# sparse experts are gated by a softmax over their logits and the shared expert is always added
# with weight 1 (shared_gating='fixed'), frozen ViT-S/16, one router per task.
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
        adapter=dict(num_experts=16, top_k=3, num_shared=1, rank=4, alpha=4,
                     shared_gating='fixed')))
# stl_reference comes from the base file: None (Δm off) until the STL baselines are run.
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt',
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
