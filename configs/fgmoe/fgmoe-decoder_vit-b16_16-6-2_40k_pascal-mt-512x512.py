# FGMoE (Xu et al., 2025, arXiv 2507.19077) as the abstract describes it (our reading): a frozen
# timm ViT-B/16 encoder, run once per batch, and a multi-task decoder whose two transformer
# blocks use FGMoE MLPs: N-k-S = 16-6-2 (16 slices of the hidden dimension per task, top-6 of the
# 14 routed ones per token, 2 shared slices always on; N counts the shared slices) and a global
# expert gated on the token and the task. Only the decoder and the heads train. See README.md.
_base_ = [
    './_base_/fgmoe-decoder_vit-b_pascal_mt.py',
    '../_base_/datasets/pascal_context_mt.py',
    '../_base_/stl_reference/pascal_mt_vit-b.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_40k.py',
]
tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt',
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
