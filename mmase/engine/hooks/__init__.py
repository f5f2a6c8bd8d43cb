from .check_finite_loss_hook import CheckFiniteLossHook
from .save_metrics_hook import SaveMetricsHook

__all__ = ['CheckFiniteLossHook', 'SaveMetricsHook']
