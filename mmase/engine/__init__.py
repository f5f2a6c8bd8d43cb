from .atomic_local_backend import AtomicLocalBackend
from .checkpoint_loaders import install_safe_checkpoint_loaders  # noqa: F401 (installs)
from .checkpoint_check import (InvalidCheckpointError, UnsafeCheckpointError, check_checkpoint,
                               check_config_checkpoints, fetch_checkpoint, load_checkpoint_file)
from .experiment_tasks import apply_experiment_tasks
from .hooks import (CheckFiniteLossHook, MainProcessLoggerHook, PerIterSeedHook,
                    SafeCheckpointHook, SaveMetricsHook, SyncRankBuffersHook)
from .multitask_runner import MultiTaskRunner

__all__ = ['AtomicLocalBackend', 'CheckFiniteLossHook', 'InvalidCheckpointError',
           'MainProcessLoggerHook', 'MultiTaskRunner', 'PerIterSeedHook', 'SafeCheckpointHook',
           'SaveMetricsHook', 'SyncRankBuffersHook', 'UnsafeCheckpointError',
           'apply_experiment_tasks', 'check_checkpoint',
           'check_config_checkpoints',
           'fetch_checkpoint',
           'load_checkpoint_file']
