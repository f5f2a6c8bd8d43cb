# Single-task baseline (STL) for 'human_parts': frozen ViT-B/16,
# one plain LoRA of rank 16 on every linear (qkv, proj, fc1, fc2); the same backbone, human_parts head,
# loss weight and schedule as the multi-task configs. Its human_parts/mIoU goes into
# configs/_base_/stl_reference/pascal_mt_vit-b.py (the Δm reference).
_base_ = [
    '../_base_/models/ase_vit-b_pascal_mt.py',
    '../_base_/datasets/pascal_context_mt.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_40k.py',
]
tasks = ('human_parts', )
model = dict(
    backbone=dict(
        adapter=None, task_embedding=False,  # no router, no task embedding: one pass
        lora=dict(rank=16, alpha=16, targets=('qkv', 'proj', 'fc1', 'fc2'))),
    decode_heads=dict(_delete_=True, human_parts={{_base_.model.decode_heads.human_parts}}),
    loss_weights=dict(_delete_=True, human_parts={{_base_.model.loss_weights.human_parts}}))
# Only images with a person, as the public loaders do when human parts is the only task (the
# parts metric leaves the other images out anyway; training on them would only thin the batches).
train_dataloader = dict(dataset=dict(filter_cfg=dict(with_persons=True)))
val_dataloader = dict(dataset=dict(filter_cfg=dict(with_persons=True)))
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt')
test_evaluator = val_evaluator
