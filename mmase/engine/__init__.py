from .hooks import CheckFiniteLossHook, SaveMetricsHook

__all__ = ['CheckFiniteLossHook', 'SaveMetricsHook']
