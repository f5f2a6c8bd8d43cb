# The ASE protocol's schedule (Li et al., arXiv 2510.00570, Sec. 4): 40 epochs with mmengine's
# EpochBasedTrainLoop, evaluation every 5 epochs and after the last one (epoch 40). The paper fixes
# only the 40 epochs (and one GPU); the rest is ours, the settings of mmase's 512x512 grid
# (schedule_40k.py) on an epoch clock: AdamW, lr 2e-4, weight decay 0.01, gradient clipping at 10,
# a linear warm-up over the first epoch, then poly decay (power 0.9) to 1e-6 at epoch 40, both
# stepped every iteration. With the batch of 16 of datasets/pascal_context_mt_224x224.py that is
# 313 iterations an epoch, 12.5k in all. Use with ../default_runtime_epoch.py (epoch-style logs).
optimizer = dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.01)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=dict(max_norm=10.0))
max_epochs = 40
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='PolyLR', eta_min=1e-6, power=0.9, by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=1, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='MainProcessLoggerHook', interval=50, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=True, interval=5, max_keep_ckpts=2,
                    backend_args=dict(backend='atomic_local')),  # atomic writes
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
