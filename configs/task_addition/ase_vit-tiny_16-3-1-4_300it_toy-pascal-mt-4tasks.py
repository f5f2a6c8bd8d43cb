# Task addition, step 1: the toy ASE model (16/3/1/4) trained on four of the five toy PASCAL
# tasks (edge left out). Step 2 adds edge to its checkpoint:
# configs/task_addition/add-edge_*.py (docs/adding_a_task.md, "Adding a task to a trained model").
_base_ = ['../toy/ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py']
tasks = ('semseg', 'human_parts', 'sal', 'normals')
head_common = dict(in_channels=[64] * 2, in_index=[0, 1], channels=32,
                   input_transform='resize_concat', num_convs=1, concat_input=False,
                   dropout_ratio=0.0, norm_cfg=dict(type='BN', requires_grad=True),
                   align_corners=False)
model = dict(
    loss_weights=dict(_delete_=True, semseg=1.0, human_parts=2.0, sal=5.0, normals=10.0),
    decode_heads=dict(
        _delete_=True,
        semseg=dict(type='FCNHead', num_classes=21, **head_common),
        human_parts=dict(type='FCNHead', num_classes=7, **head_common),
        sal=dict(type='BinaryHead', **head_common),
        normals=dict(type='DenseRegressionHead', out_channels=3, **head_common)))
