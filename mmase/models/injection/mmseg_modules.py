"""Finding the FFNs and attention projections of an mmseg transformer backbone, by module type.

FFNs (where the ASE experts go, Li et al., 2025, Sec. 3: beside each frozen FFN):

- mmcv's ``FFN`` (mmseg's Swin and ViT): ``out = identity + drop_path(gamma(layers(x)))``;
- SegFormer's ``MixFFN`` (MiT): ``out = identity + drop_path(layers(nchw(x)))`` with
  ``layers`` = 1x1 conv, depthwise 3x3 conv, GELU, 1x1 conv on ``(N, C, H, W)`` maps.

In both the residual branch is the FFN's ``layers`` (a ``Sequential``): the experts are
placed beside it (:class:`~mmase.models.adapters.MoELoRAFFN` wraps ``<ffn>.layers``), so they
read the FFN's input tokens ``x'`` (after the block's norm) and their sum lands inside the
residual branch exactly once, under the same drop path (and layer scale) as the FFN's own
output: ``y = x + drop_path(FFN(x') + sum_i g_i B_i A_i x')`` -- as ASEViT's
``x + drop_path(mlp(x') + experts(x'))``. The identity is added by the FFN, once.

Attention projections (plain LoRA): Swin's ``WindowMSA`` ``qkv``/``proj`` linears (called on
windows ``(N * nW, N_w, C)``, which plain LoRA does not mind: no router, no task), and the
packed projections of ``nn.MultiheadAttention`` (mmcv's ``MultiheadAttention``: ViT, MiT) by
:class:`~mmase.models.adapters.lora.LoRAMultiheadAttention`.
"""
from typing import Dict, List, Tuple

import torch.nn as nn
from mmcv.cnn.bricks.transformer import FFN
from mmseg.models.backbones.mit import MixFFN
from mmseg.models.backbones.swin import WindowMSA

#: FFN class -> whether its ``layers`` run on ``(N, C, H, W)`` maps (channels first).
FFN_TYPES: Dict[type, bool] = {FFN: False, MixFFN: True}

#: Attention class -> kind (``'linears'``: ``qkv``/``proj`` nn.Linear children; ``'packed'``:
#: an ``nn.MultiheadAttention``).
ATTENTION_TYPES: Dict[type, str] = {WindowMSA: 'linears', nn.MultiheadAttention: 'packed'}


def _kinds(types) -> str:
    return ', '.join(sorted(t.__name__ for t in types))


def find_ffns(backbone: nn.Module) -> List[Tuple[str, nn.Module, bool]]:
    """``(name, ffn, channels_first)`` of every recognised FFN, in module order."""
    found = []
    for name, module in backbone.named_modules():
        for cls, channels_first in FFN_TYPES.items():
            if isinstance(module, cls):
                if not isinstance(getattr(module, 'layers', None), nn.Sequential):
                    raise ValueError(f'{name} ({type(module).__name__}) has no Sequential '
                                     f'`layers` to place experts beside')
                found.append((name, module, channels_first))
                break
    return found


def find_attentions(backbone: nn.Module) -> List[Tuple[str, nn.Module, str]]:
    """``(name, attention, kind)`` of every recognised attention, in module order."""
    found = []
    for name, module in backbone.named_modules():
        for cls, kind in ATTENTION_TYPES.items():
            if isinstance(module, cls):
                found.append((name, module, kind))
                break
    return found


def ffn_width(ffn: nn.Module) -> int:
    """The token width ``C`` an FFN maps to itself."""
    return int(ffn.embed_dims)


def describe_ffn_types() -> str:
    return _kinds(FFN_TYPES)


def describe_attention_types() -> str:
    return _kinds(ATTENTION_TYPES)
