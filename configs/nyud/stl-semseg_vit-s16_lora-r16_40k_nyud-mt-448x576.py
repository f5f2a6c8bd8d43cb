# Single-task baseline (STL) for 'semseg': frozen ViT-S/16,
# one plain LoRA of rank 16 on every linear (qkv, proj, fc1, fc2); the same backbone, semseg head,
# loss weight and schedule as the multi-task configs. Its semseg/mIoU goes into
# configs/_base_/stl_reference/nyud_mt_vit-s.py (the Δm reference).
_base_ = [
    '../_base_/models/ase_vit_nyud_mt.py',
    '../_base_/datasets/nyud_mt.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_40k.py',
]
tasks = ('semseg', )
model = dict(
    backbone=dict(
        adapter=None, task_embedding=False,  # no router, no task embedding: one pass
        lora=dict(rank=16, alpha=16, targets=('qkv', 'proj', 'fc1', 'fc2'))),
    decode_heads=dict(_delete_=True, semseg={{_base_.model.decode_heads.semseg}}),
    loss_weights=dict(_delete_=True, semseg={{_base_.model.loss_weights.semseg}}))
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt')
test_evaluator = val_evaluator
