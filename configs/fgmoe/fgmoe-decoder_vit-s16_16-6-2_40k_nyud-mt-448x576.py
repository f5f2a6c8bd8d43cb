# FGMoE (Xu et al., 2025, arXiv 2507.19077) as the abstract describes it (our reading) on NYUD-v2:
# a frozen timm ViT-S/16 encoder run once per batch, a multi-task decoder of two FGMoE blocks
# (N-k-S = 16-6-2 slices, a global expert), one light head per task; only the decoder and the
# heads train. See README.md.
_base_ = [
    './_base_/fgmoe-decoder_vit-s_nyud_mt.py',
    '../_base_/datasets/nyud_mt.py',
    '../_base_/stl_reference/nyud_mt_vit-s.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_40k.py',
]
tasks = ('semseg', 'depth', 'normals', 'edge')
# stl_reference comes from the base file: None (Δm off) until the STL baselines are run.
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt', edge_tolerance=0.011,
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
