"""The plain ViT's building blocks, with timm's parameter names.

``PatchEmbed`` (``patch_embed.proj``), ``Attention`` (``attn.qkv``, ``attn.proj``), ``Mlp``
(``mlp.fc1``, ``mlp.fc2``) and the pre-norm ``Block`` (``norm1``, ``norm2``), as timm's
``vision_transformer.py`` names them, so timm ViT state dicts load with a strict key check.
Plain modules (``forward(x)``): adapters wrap any linear or the MLP in place and read the task
index from the host's task context (:mod:`mmase.models.injection.task_context`).
"""
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath, resample_abs_pos_embed

#: (embed_dims, num_layers, num_heads, mlp_ratio) of the named architectures.
ARCH_SETTINGS = {
    'vit-t': dict(embed_dims=192, num_layers=12, num_heads=3, mlp_ratio=4.0),
    'vit-s': dict(embed_dims=384, num_layers=12, num_heads=6, mlp_ratio=4.0),
    'vit-b': dict(embed_dims=768, num_layers=12, num_heads=12, mlp_ratio=4.0),
    'vit-l': dict(embed_dims=1024, num_layers=24, num_heads=16, mlp_ratio=4.0),
}

def resize_pos_embed(pos_embed: torch.Tensor, new_grid: Tuple[int, int],
                     old_grid: Tuple[int, int]) -> torch.Tensor:
    """Resample an absolute position embedding with one class-token prefix to another grid.

    The one place where position embeddings change size (checkpoint loading and inputs of
    another size). Bicubic with antialiasing, as timm's ``resample_abs_pos_embed``.

    Args:
        pos_embed (Tensor): ``(1, 1 + old_h * old_w, C)``.
        new_grid (tuple[int, int]): ``(new_h, new_w)`` patches.
        old_grid (tuple[int, int]): ``(old_h, old_w)`` patches of ``pos_embed``.

    Returns:
        Tensor: ``(1, 1 + new_h * new_w, C)`` (``pos_embed`` itself when the grids match).
    """
    if tuple(new_grid) == tuple(old_grid):
        return pos_embed
    return resample_abs_pos_embed(pos_embed, new_size=list(new_grid), old_size=list(old_grid),
                                  num_prefix_tokens=1)


class PatchEmbed(nn.Module):
    """Non-overlapping patches by a strided convolution.

    Args:
        patch_size (int): Patch side ``p`` in pixels.
        embed_dims (int): Output channels ``C``.
        in_channels (int): Image channels. Default: 3.

    Shapes: ``(N, 3, H, W)`` -> tokens ``(N, floor(H/p) * floor(W/p), C)`` and the grid.
    """

    def __init__(self, patch_size: int, embed_dims: int, in_channels: int = 3):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        x = self.proj(x)
        grid = (x.shape[2], x.shape[3])
        return x.flatten(2).transpose(1, 2), grid


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection (timm layout).

    Shapes: ``(N, L, C)`` -> ``(N, L, C)``.
    """

    def __init__(self, embed_dims: int, num_heads: int):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'arch.embed_dims={embed_dims} is not divisible by '
                             f'arch.num_heads={num_heads}')
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dims, embed_dims * 3)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, channels = x.shape
        qkv = self.qkv(x).reshape(n, length, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(n, length, channels))


class Mlp(nn.Module):
    """Two-layer GELU MLP (timm layout). Shapes: ``(N, L, C)`` -> ``(N, L, C)``."""

    def __init__(self, embed_dims: int, hidden_dims: int):
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block (timm ``Block`` without layer scale). Shapes: (N, L, C)."""

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float,
                 drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.attn = Attention(embed_dims, num_heads)
        self.norm2 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def parse_arch(arch) -> Dict[str, float]:
    if isinstance(arch, str):
        if arch not in ARCH_SETTINGS:
            raise ValueError(f'arch={arch!r} is not one of {sorted(ARCH_SETTINGS)} (or give a '
                             f'dict with embed_dims, num_layers, num_heads, mlp_ratio)')
        return dict(ARCH_SETTINGS[arch])
    if not isinstance(arch, dict):
        raise TypeError(f'arch must be a name or a dict, got {type(arch).__name__}')
    required = ('embed_dims', 'num_layers', 'num_heads')
    missing = [k for k in required if k not in arch]
    unknown = sorted(set(arch) - set(required) - {'mlp_ratio'})
    if missing or unknown:
        raise ValueError(f'arch dict: missing keys {missing}, unknown keys {unknown}; expected '
                         f'embed_dims, num_layers, num_heads and optionally mlp_ratio')
    return {'mlp_ratio': 4.0, **arch}


def to_2tuple(value, field: str) -> Tuple[int, int]:
    if isinstance(value, int):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value):
        raise ValueError(f'{field}={value!r} must be a positive int or (h, w)')
    return value


