# Table 1 "LoRA-MoE (16/4/0/4)": the vanilla LoRA-MoE, 16 experts of rank 4 beside every
# FFN, top-4, no shared expert (4 active, as ASE's 3 + 1); ViT-B/16.
# ASE protocol (224x224, 40 epochs, ImageNet-pretrained ViT-B/16, Δm against the published
# ResNet-18 STL row of Table 1): Li et al., arXiv 2510.00570.
_base_ = [
    '../_base_/models/ase_vit-b_pascal_mt_224.py',
    '../_base_/datasets/pascal_context_mt_224x224.py',
    '../_base_/stl_reference/pascal_mt_resnet18_ase.py',
    '../_base_/default_runtime_epoch.py',
    '../_base_/schedules/schedule_40e.py',
]
tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
model = dict(
    tasks=tasks,
    backbone=dict(
        tasks=tasks,
        adapter=dict(num_experts=16, top_k=4, num_shared=0, rank=4, alpha=4,
                     shared_gating='none')))
train_dataloader = dict(dataset=dict(tasks=tasks))
val_dataloader = dict(dataset=dict(tasks=tasks))
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiTaskMetric', tasks=tasks, protocol='astmt',
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
