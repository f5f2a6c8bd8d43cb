"""Multi-task decoders on a frozen encoder: the FGMoE decoder and the backbone-shaped wrapper
that runs the encoder once per batch and the decoder for every task."""
from .fgmoe_decoder import FGMoEDecoder
from .frozen_encoder_mt_decoder import FrozenEncoderMTDecoder

__all__ = ['FGMoEDecoder', 'FrozenEncoderMTDecoder']
