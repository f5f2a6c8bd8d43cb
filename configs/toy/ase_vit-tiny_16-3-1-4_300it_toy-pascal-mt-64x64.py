# The README's main job: ASE (16/3/1/4) on a tiny random-init ViT, five PASCAL-Context tasks,
# the embedded toy dataset (data/toy_pascal_mt, public PASCAL_MT layout), 300 iterations on CPU.
_base_ = [
    '../_base_/models/ase_vit-tiny_toy_pascal_mt.py',
    '../_base_/datasets/toy_pascal_mt.py',
    '../_base_/stl_reference/toy_pascal_mt.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_toy.py',
]
tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
model = dict(
    backbone=dict(
        adapter=dict(num_experts=16, top_k=3, num_shared=1, rank=4, alpha=4,
                     shared_gating='adaptive')))
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt',
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
