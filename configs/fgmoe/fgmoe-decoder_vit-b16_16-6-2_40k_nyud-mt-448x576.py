# FGMoE (Xu et al., 2025, arXiv 2507.19077) as the abstract describes it (our reading) on NYUD-v2,
# with a frozen timm ViT-B/16 encoder and a 384-channel decoder of two FGMoE blocks (16-6-2);
# only the decoder and the heads train. See README.md.
_base_ = [
    './_base_/fgmoe-decoder_vit-b_nyud_mt.py',
    '../_base_/datasets/nyud_mt.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_40k.py',
]
tasks = ('semseg', 'depth', 'normals', 'edge')
# No ViT-B STL reference exists for NYUD-v2 in this repository: Δm off.
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt', edge_tolerance=0.011,
                     stl_reference=None)
test_evaluator = val_evaluator
