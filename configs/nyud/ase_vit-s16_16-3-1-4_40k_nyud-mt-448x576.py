# ASE (Li et al., 2025, arXiv 2510.00570) on NYUD-v2: LoRA mixture of experts with adaptive shared
# experts, N/k/S/r = 16/3/1/4 (the shared expert counted in N) beside every FFN, frozen ViT-S/16,
# one router per task and block, one head per task.
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
        adapter=dict(num_experts=16, top_k=3, num_shared=1, rank=4, alpha=4,
                     shared_gating='adaptive')))
# stl_reference comes from the base file: None (Δm off) until the STL baselines are run.
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt', edge_tolerance=0.011,
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
