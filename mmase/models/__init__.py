from . import adapters, backbones, decode_heads, losses, segmentors  # noqa: F401
from . import decoders  # noqa: F401
from .data_preprocessor import MultiTaskDataPreProcessor
from .decode_heads import BinaryHead, DenseRegressionHead
from .segmentors import MultiTaskEncoderDecoder

__all__ = ['MultiTaskDataPreProcessor', 'MultiTaskEncoderDecoder', 'BinaryHead',
           'DenseRegressionHead']
