# FGMoE decoder with one set of routed slices for all tasks (ours, a reading of the abstract's
# "fewer parameters"): the 14 routed slices of each FGMoE MLP are shared by the five tasks; only
# each task's router and its 2 shared (always-on) slices are per task. Otherwise the main
# fgmoe-decoder_vit-s16_16-6-2_40k_pascal-mt-512x512.py, one key apart. See README.md.
_base_ = ['./fgmoe-decoder_vit-s16_16-6-2_40k_pascal-mt-512x512.py']
model = dict(backbone=dict(decoder=dict(mlp_moe=dict(task_specific_experts='shared_only'))))
