# The ASE protocol (Li et al., arXiv 2510.00570, Sec. 4), five PASCAL-Context tasks, ViT-S/16:
# 224x224 inputs, 40 epochs, protocol 'astmt' (Sal mIoU, Norm mErr, Edge odsF); the reference of
# Table 1: Δm against the published ResNet-18 STL row. Experiments inherit this file and set
# their experts (model.backbone.adapter, N/k/S/r in the paper's notation).
_base_ = [
    '../models/ase_vit-s_pascal_mt_224.py',
    '../datasets/pascal_context_mt_224x224.py',
    '../stl_reference/pascal_mt_resnet18_ase.py',
    '../default_runtime_epoch.py',
    '../schedules/schedule_40e.py',
]
tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
val_evaluator = dict(type='MultiTaskMetric', protocol='astmt',
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
