# A task of a kind the package never names ('softsal'), declared in this config only: the soft
# saliency of toy PASCAL read as a float map (v + 1) / 256 in (0, 1] (0 = unlabelled, the
# padding), predicted through a sigmoid, trained with an L1 loss and scored by the per-pixel
# error meter. Nothing in mmase changes for it.
_base_ = ['../../../configs/toy/ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py']
custom_tasks = [
    dict(type='DenseTask', name='softsal', kind='softsal', ignore_value=0.0, is_float=True,
         channels=1, activation='sigmoid', main_metric='mae', lower_is_better=True,
         meter=dict(type='PixelErrorMeter'),
         annotation=dict(dir='sal_distill', suffix='.png', decoder='png_float', offset=1.0,
                         scale=1.0 / 256)),
]
# stated once: the model, datasets and evaluator follow both lines (MultiTaskRunner)
tasks = ('semseg', 'softsal')
head_common = dict(in_channels=[64] * 2, in_index=[0, 1], channels=32,
                   input_transform='resize_concat', num_convs=1, concat_input=False,
                   dropout_ratio=0.0, norm_cfg=dict(type='BN', requires_grad=True),
                   align_corners=False)
model = dict(
    backbone=dict(arch=dict(num_layers=2), out_indices=(0, 1)),
    loss_weights=dict(_delete_=True, semseg=1.0, softsal=10.0),
    decode_heads=dict(
        _delete_=True,
        semseg=dict(type='FCNHead', num_classes=21, **head_common),
        softsal=dict(type='DenseRegressionHead', out_channels=1,
                     loss_decode=dict(type='DepthL1Loss', loss_name='loss_softsal'),
                     **head_common)))
val_evaluator = dict(stl_reference=None)
test_evaluator = val_evaluator
train_cfg = dict(max_iters=1, val_interval=1)
param_scheduler = []
default_hooks = dict(checkpoint=dict(interval=1), logger=dict(interval=1))
