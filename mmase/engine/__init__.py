from .atomic_local_backend import AtomicLocalBackend
from .checkpoint_loaders import install_safe_checkpoint_loaders  # noqa: F401 (installs)
from .checkpoint_check import (InvalidCheckpointError, UnsafeCheckpointError, check_checkpoint,
                               check_config_checkpoints, fetch_checkpoint, load_checkpoint_file)
from .hooks import (CheckFiniteLossHook, MainProcessLoggerHook, PerIterSeedHook,
                    SafeCheckpointHook, SaveMetricsHook, SyncRankBuffersHook)

__all__ = ['AtomicLocalBackend', 'CheckFiniteLossHook', 'InvalidCheckpointError',
           'MainProcessLoggerHook', 'PerIterSeedHook', 'SafeCheckpointHook', 'SaveMetricsHook',
           'SyncRankBuffersHook', 'UnsafeCheckpointError', 'check_checkpoint',
           'check_config_checkpoints',
           'fetch_checkpoint',
           'load_checkpoint_file']
