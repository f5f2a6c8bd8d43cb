from .atomic_local_backend import AtomicLocalBackend
from .hooks import CheckFiniteLossHook, SaveMetricsHook

__all__ = ['AtomicLocalBackend', 'CheckFiniteLossHook', 'SaveMetricsHook']
