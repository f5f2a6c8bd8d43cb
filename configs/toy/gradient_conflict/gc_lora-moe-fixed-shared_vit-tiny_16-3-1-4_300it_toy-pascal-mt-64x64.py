# lora-moe-fixed-shared_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64 with GradientConflictHook: the pairwise cosine of the tasks' gradients
# on the shared parameters every 10 iterations (docs/method.md, "Gradient conflict";
# tools/analysis/plot_gradient_conflict.py draws the four methods of this folder together).
_base_ = ['../lora-moe-fixed-shared_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py']
custom_hooks = [
    dict(type='SaveMetricsHook'),
    dict(type='CheckFiniteLossHook'),
    dict(type='PerIterSeedHook'),
    dict(type='GradientConflictHook', interval=10),
]
