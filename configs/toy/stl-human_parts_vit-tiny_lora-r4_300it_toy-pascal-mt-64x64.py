# Single-task baseline (STL) for 'human_parts' on the toy dataset: the same tiny ViT, schedule and head as
# the multi-task toy config and its plain LoRA of rank 4 on qkv/proj, without the experts (the
# ASE paper's ablation reference: a single-task ViT with the multi-task model's backbone).
# Its human_parts metric goes into configs/_base_/stl_reference/toy_pascal_mt.py (the Δm reference).
_base_ = [
    '../_base_/models/ase_vit-tiny_toy_pascal_mt.py',
    '../_base_/datasets/toy_pascal_mt.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_toy.py',
]
tasks = ('human_parts', )
model = dict(
    backbone=dict(
        adapter=None, task_embedding=False),  # no experts, no router, no task embedding
    decode_heads=dict(_delete_=True, human_parts={{_base_.model.decode_heads.human_parts}}),
    loss_weights=dict(_delete_=True, human_parts={{_base_.model.loss_weights.human_parts}}))
# Only images with a person, as the public loaders do when human parts is the only task (the
# parts metric leaves the other images out anyway; training on them would only thin the batches).
train_dataloader = dict(dataset=dict(filter_cfg=dict(with_persons=True)))
val_dataloader = dict(dataset=dict(filter_cfg=dict(with_persons=True)))
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt')
test_evaluator = val_evaluator
