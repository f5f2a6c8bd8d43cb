"""Backbones: map ``(images, task)`` to feature maps; they know nothing of datasets."""
from .ase_vit import ASEViT
from .vit_layers import ARCH_SETTINGS, resize_pos_embed

__all__ = ['ARCH_SETTINGS', 'ASEViT', 'resize_pos_embed']
