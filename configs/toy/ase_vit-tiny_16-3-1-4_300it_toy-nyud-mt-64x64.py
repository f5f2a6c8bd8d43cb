# ASE (16/3/1/4) on a tiny random-init ViT, the four NYUD-v2 tasks, the embedded toy dataset
# (data/toy_nyud_mt, public NYUDv2 layout), 300 iterations on CPU. The NYUD twin of
# ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py.
_base_ = [
    '../_base_/models/ase_vit-tiny_toy_nyud_mt.py',
    '../_base_/datasets/toy_nyud_mt.py',
    '../_base_/stl_reference/toy_nyud_mt.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_toy.py',
]
tasks = ('semseg', 'depth', 'normals', 'edge')
model = dict(
    backbone=dict(
        adapter=dict(num_experts=16, top_k=3, num_shared=1, rank=4, alpha=4,
                     shared_gating='adaptive')))
# stl_reference comes from the base file: measured with the four toy NYUD STL configs.
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt', edge_tolerance=0.011,
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
