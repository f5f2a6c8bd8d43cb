"""Backbones: map ``(images, task)`` to feature maps; they know nothing of datasets."""
from .ase_vit import ASEViT
from .task_routed_backbone import TaskRoutedBackbone
from .vit_layers import ARCH_SETTINGS, resize_pos_embed

__all__ = ['ARCH_SETTINGS', 'ASEViT', 'TaskRoutedBackbone', 'resize_pos_embed']
