"""wrap_linears: replace named linears in place by wrappers that keep them as base_layer."""
import pytest
import torch.nn as nn

from mmase.models.adapters import LoRALinear, MoELoRALinear
from mmase.models.injection import wrap_linears


def tiny_model():
    model = nn.Module()
    model.blocks = nn.ModuleList([nn.Module() for _ in range(2)])
    for block in model.blocks:
        block.attn = nn.Module()
        block.attn.qkv = nn.Linear(4, 12)
        block.act = nn.GELU()
    return model


def test_wrap_named_linears_only():
    model = tiny_model()
    original = model.blocks[1].attn.qkv
    names = wrap_linears(model, ['blocks.1.attn.qkv'], lambda name, lin: LoRALinear(lin, 2))
    assert names == ['blocks.1.attn.qkv']
    assert isinstance(model.blocks[1].attn.qkv, MoELoRALinear)
    assert model.blocks[1].attn.qkv.base_layer is original
    assert isinstance(model.blocks[0].attn.qkv, nn.Linear)  # untouched
    keys = set(model.state_dict())
    assert 'blocks.1.attn.qkv.base_layer.weight' in keys and 'blocks.0.attn.qkv.weight' in keys


def test_wrap_errors():
    model = tiny_model()
    with pytest.raises(KeyError, match="no submodule named 'blocks.0.attn.proj'"):
        wrap_linears(model, ['blocks.0.attn.proj'], lambda name, lin: lin)
    with pytest.raises(TypeError, match="'blocks.0.act' is a GELU, not an nn.Linear"):
        wrap_linears(model, ['blocks.0.act'], lambda name, lin: lin)
    wrap_linears(model, ['blocks.0.attn.qkv'], lambda name, lin: LoRALinear(lin))
    with pytest.raises(TypeError, match='already wrapped'):
        wrap_linears(model, ['blocks.0.attn.qkv'], lambda name, lin: LoRALinear(lin))
