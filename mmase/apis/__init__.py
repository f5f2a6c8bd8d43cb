"""Inference: ``init_model`` / ``inference_model`` and the ``MultiTaskInferencer``."""
from .inference import inference_model, init_model

__all__ = ['init_model', 'inference_model']
