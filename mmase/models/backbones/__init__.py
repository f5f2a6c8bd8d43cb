"""Backbones: map ``(images, task)`` to feature maps; they know nothing of datasets.

:class:`MultiTaskBackbone` is the declared interface; :class:`AdaptedBackbone` is a plain
backbone plus the injector (:mod:`mmase.models.injection`): :class:`ASEViT` (timm-named ViT)
and :class:`TaskRoutedBackbone` (mmseg's families)."""
from .adapted_backbone import AdaptedBackbone
from .ase_vit import ASEViT
from .multitask_backbone import MULTITASK_MODES, MultiTaskBackbone
from .task_routed_backbone import TaskRoutedBackbone
from .vit_layers import ARCH_SETTINGS, resize_pos_embed

__all__ = ['ARCH_SETTINGS', 'ASEViT', 'AdaptedBackbone', 'MULTITASK_MODES', 'MultiTaskBackbone',
           'TaskRoutedBackbone', 'resize_pos_embed']
