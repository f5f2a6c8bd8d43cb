# Single-task baseline (STL) for 'depth': the tiny random-init ViT of the toy configs,
# the multi-task toy config's plain LoRA of rank 4 on qkv/proj without the experts; the same backbone, depth head,
# loss weight and schedule as the multi-task configs. Its depth/rmse goes into
# configs/_base_/stl_reference/toy_nyud_mt.py (the Δm reference).
_base_ = [
    '../_base_/models/ase_vit-tiny_toy_nyud_mt.py',
    '../_base_/datasets/toy_nyud_mt.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_toy.py',
]
tasks = ('depth', )
model = dict(
    backbone=dict(
        adapter=None, task_embedding=False),  # no experts, no router, no task embedding
    decode_heads=dict(_delete_=True, depth={{_base_.model.decode_heads.depth}}),
    loss_weights=dict(_delete_=True, depth={{_base_.model.loss_weights.depth}}))
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt')
test_evaluator = val_evaluator
