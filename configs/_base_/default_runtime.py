# Runtime shared by every mmase experiment (mmseg 1.x conventions).
custom_imports = dict(imports=['mmase'], allow_failed_imports=False)
default_scope = 'mmseg'
# the config's top-level `tasks` reaches the model, datasets and evaluators that state none
# (mmase.engine.experiment_tasks); mmseg's tools/train.py builds it too (RUNNERS.build)
runner_type = 'MultiTaskRunner'
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # tools/train.py switches to gloo on CPU-only machines
)
vis_backends = [
    dict(type='LocalVisBackend'),
    # TensorBoard beside it: `tools/train.py --tensorboard` (pip install -e ".[tensorboard]"), or
    # add dict(type='TensorboardVisBackend') here.
]
visualizer = dict(type='MultiTaskLocalVisualizer', vis_backends=vis_backends, name='visualizer')
# tools/test.py --tta: flips x scales of the dataset's tta_pipeline, averaged per task
tta_model = dict(type='MultiTaskTTAModel')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
custom_hooks = [
    dict(type='SaveMetricsHook'),  # metrics_val_iter_<N>.json / metrics_test.json in work_dir
    dict(type='CheckFiniteLossHook'),  # stop on a NaN / inf loss, naming the task
    dict(type='PerIterSeedHook'),
    dict(type='ProgressBarHook'),  # progress bar over the test set (val=True: validation too)  # torch RNG re-seeded from (seed, iteration): exact resume
]
