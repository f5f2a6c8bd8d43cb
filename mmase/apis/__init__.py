"""Inference: ``init_model`` / ``inference_model`` and the ``MultiTaskInferencer``."""
from .inference import inference_model, init_model, predict_pipeline
from .multitask_inferencer import MultiTaskInferencer

__all__ = ['MultiTaskInferencer', 'init_model', 'inference_model', 'predict_pipeline']
