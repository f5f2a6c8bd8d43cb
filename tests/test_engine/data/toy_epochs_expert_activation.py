# The toy ASE config (16/3/1/4, 4-block ViT, 64x64) on an epoch clock, with ExpertActivationHook:
# tests/test_engine/test_expert_activation_hook.py trains it for a few tiny epochs, and the Fig. 4
# demonstration of docs/method.md for more. One epoch = the 40 toy train images, 10 iterations.
_base_ = ['../../../configs/toy/ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py']
max_epochs = 3
train_dataloader = dict(sampler=dict(type='DefaultSampler', shuffle=True))
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(by_epoch=True, interval=max_epochs),
                     logger=dict(log_metric_by_epoch=True))
log_processor = dict(by_epoch=True)
custom_hooks = [
    dict(type='SaveMetricsHook'),
    dict(type='CheckFiniteLossHook'),
    dict(type='PerIterSeedHook'),
    dict(type='ExpertActivationHook'),
]
