# ASE (Li et al., 2025, arXiv 2510.00570): LoRA mixture of experts with adaptive shared experts,
# (N/k/S/r) = 16/3/1/4 in the paper's notation: 16 LoRA experts of rank 4 beside every FFN,
# the 1 shared one(s) counted in N (15 sparse, top-3), N*r = 64 ranks stored and (k+S)*r = 16
# active per token as in every config of the grid; shared and top-3 sparse gates in one softmax
# per task router, plain LoRA r=4 on qkv/proj, task embeddings, frozen ViT-B/16, one head per task.
_base_ = [
    '../_base_/models/ase_vit-b_pascal_mt.py',
    '../_base_/datasets/pascal_context_mt.py',
    '../_base_/stl_reference/pascal_mt_vit-b.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_40k.py',
]
tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
model = dict(
    backbone=dict(
        adapter=dict(num_experts=16, top_k=3, num_shared=1, rank=4, alpha=4,
                     shared_gating='adaptive')))
# stl_reference comes from the base file: None (Δm off) until the STL baselines are run.
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt',
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
