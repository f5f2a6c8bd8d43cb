from .multitask_encoder_decoder import MultiTaskEncoderDecoder
from .multitask_tta import MultiTaskTTAModel

__all__ = ['MultiTaskEncoderDecoder', 'MultiTaskTTAModel']
