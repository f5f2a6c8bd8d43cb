from .atomic_local_backend import AtomicLocalBackend
from .checkpoint_check import UnsafeCheckpointError, check_checkpoint
from .hooks import (CheckFiniteLossHook, MainProcessLoggerHook, PerIterSeedHook,
                    SafeCheckpointHook, SaveMetricsHook)

__all__ = ['AtomicLocalBackend', 'CheckFiniteLossHook', 'MainProcessLoggerHook',
           'PerIterSeedHook', 'SafeCheckpointHook', 'SaveMetricsHook', 'UnsafeCheckpointError',
           'check_checkpoint']
