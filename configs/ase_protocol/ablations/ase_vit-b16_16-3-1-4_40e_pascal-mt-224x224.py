# Fig. 3(a) top-k sweep, ASE (16/3/1/4): 3 + 1 active experts, against
# lora-moe_vit-b16_16-4-0-4 (the same 4 active experts, no shared one).
# ASE ablation (Sec. 4, Fig. 2/3): 224x224, 40 epochs, ViT-B/16; Δm against the ViT STL
# configs of this folder (stl_reference/pascal_mt_vit-b16_ase-ablation.py), edges by BCE.
_base_ = [
    '../../_base_/models/ase_vit-b_pascal_mt_224.py',
    '../../_base_/datasets/pascal_context_mt_224x224.py',
    '../../_base_/stl_reference/pascal_mt_vit-b16_ase-ablation.py',
    '../../_base_/default_runtime_epoch.py',
    '../../_base_/schedules/schedule_40e.py',
]
tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
model = dict(
    tasks=tasks,
    backbone=dict(
        tasks=tasks,
        adapter=dict(num_experts=16, top_k=3, num_shared=1, rank=4, alpha=4,
                     shared_gating='adaptive')))
train_dataloader = dict(dataset=dict(tasks=tasks))
val_dataloader = dict(dataset=dict(tasks=tasks))
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiTaskMetric', tasks=tasks, protocol='astmt',
                     main_metrics={{_base_.main_metrics}},
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
