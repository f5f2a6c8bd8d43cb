# The runtime of default_runtime.py for epoch-based schedules (schedules/schedule_40e.py): logs
# and metric files count epochs ("Epoch(train) [3][100/313]", metrics_val_epoch_5.json).
#
# Expert-activation study (ASE Fig. 4): add to the experiment
#   custom_hooks = [..., dict(type='ExpertActivationHook')]
# (the list replaces the one below, so repeat its hooks), then plot with
# tools/analysis/plot_expert_activation.py; see docs/method.md.
_base_ = ['./default_runtime.py']
log_processor = dict(by_epoch=True)
