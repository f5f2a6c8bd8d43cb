# Single-task baseline (STL) for 'normals': the tiny random-init ViT of the toy configs,
# the multi-task toy config's plain LoRA of rank 4 on qkv/proj without the experts; the same backbone, normals head,
# loss weight and schedule as the multi-task configs. Its normals/mErr goes into
# configs/_base_/stl_reference/toy_nyud_mt.py (the Δm reference).
_base_ = [
    '../_base_/models/ase_vit-tiny_toy_nyud_mt.py',
    '../_base_/datasets/toy_nyud_mt.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_toy.py',
]
tasks = ('normals', )
model = dict(
    backbone=dict(
        adapter=None, task_embedding=False),  # no experts, no router, no task embedding
    decode_heads=dict(_delete_=True, normals={{_base_.model.decode_heads.normals}}),
    loss_weights=dict(_delete_=True, normals={{_base_.model.loss_weights.normals}}))
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt')
test_evaluator = val_evaluator
