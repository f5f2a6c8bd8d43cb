from .check_finite_loss_hook import CheckFiniteLossHook
from .expert_activation_hook import ExpertActivationHook
from .gradient_conflict_hook import GradientConflictHook
from .logger_hook import MainProcessLoggerHook
from .per_iter_seed_hook import PerIterSeedHook
from .progress_bar_hook import ProgressBarHook
from .safe_checkpoint_hook import SafeCheckpointHook
from .save_metrics_hook import SaveMetricsHook
from .save_predictions_hook import SavePredictionsHook
from .sync_rank_buffers_hook import SyncRankBuffersHook

__all__ = ['CheckFiniteLossHook', 'ExpertActivationHook', 'GradientConflictHook',
           'MainProcessLoggerHook',
           'PerIterSeedHook', 'ProgressBarHook', 'SafeCheckpointHook', 'SaveMetricsHook',
           'SavePredictionsHook', 'SyncRankBuffersHook']
