# The published single-task (STL) reference of ASE's comparison table: the ResNet-18 STL row of
# Table 1 in
#   Li et al., "Adaptive Shared Experts with LoRA-Based Mixture of Experts for Multi-Task
#   Learning", arXiv 2510.00570 (2025), Table 1 (PASCAL-Context, 224x224, 40 epochs).
# Seg mIoU 60.1, Norm mErr 15.4 deg, H.Parts mIoU 51.0, Sal mIoU 63.2, Edge odsF 50.8 (percent).
#
# With it a config reports Δm comparable to the paper's "Δm %" column without training any STL
# model (its ASE 32/6/2/2 row gives +7.58, tests/test_evaluation/test_delta_m.py):
#   val_evaluator = dict(type='MultiTaskMetric', protocol='astmt',
#                        stl_reference={{_base_.stl_reference}})
# `metrics` fixes each task's main metric (MultiTaskMetric.main_metrics follows it; a config
# choosing another main metric for a task is an error): saliency is scored by the ASTMT / MTLoRA
# mIoU (`sal/mIoU`), not maxF. Only compare numbers of the ASE protocol
# (configs/_base_/datasets/pascal_context_mt_224x224.py, schedules/schedule_40e.py): 224x224
# inputs, 40 epochs.
main_metrics = dict(semseg='mIoU', normals='mErr', human_parts='mIoU', sal='mIoU', edge='odsF')
stl_reference = dict(
    source='ASE (arXiv 2510.00570) Table 1, STL ResNet-18 row; '
    'configs/_base_/stl_reference/pascal_mt_resnet18_ase.py',
    metrics=main_metrics,
    semseg=60.1,
    normals=15.4,
    human_parts=51.0,
    sal=63.2,
    edge=50.8)
