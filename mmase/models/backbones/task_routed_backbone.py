"""TaskRoutedBackbone: ASE's task-routed LoRA experts around any mmseg backbone with a layout.

The mmseg backbone (``SwinTransformer``, ``MixVisionTransformer``, ``VisionTransformer``,
``BEiT``, ``MAE``, or another with a registered layout, :mod:`mmase.models.injection.layout`)
is built from its own config and initialised as mmseg does; its checkpoint (a local file in
mmseg's format or the original release, strict key check) loads at :meth:`init_weights`.
Everything else is :class:`~.adapted_backbone.AdaptedBackbone`'s, as for ASEViT: the same
keys with the same defaults (``adapter``, ``lora``, ``mlp_moe``, ``task_embedding``,
``trainable``, ``frozen``), the injector, freezing, the multi-task pass, router losses and
statistics. On mmseg's families the experts sit beside each FFN branch (``<ffn>.layers``: their
sum lands inside the residual branch once, under the FFN's drop path and layer scale), plain
LoRA goes on the attention projections (Swin's ``qkv``/``proj`` linears; packed
``nn.MultiheadAttention`` through a weight delta), and the task embedding is added where the
layout forms the first stage's tokens.

Follows Li et al., 2025 (ASE, arXiv 2510.00570), Sec. 3 for the experts, routers, task
embeddings and losses; wrapping Swin / MiT / mmseg's ViT / BEiT is ours.
"""
import copy
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log
from mmseg.registry import MODELS

from ..injection import check_renamed_keys, layout_for, parse_adapter_configs
from .adapted_backbone import AdaptedBackbone


@MODELS.register_module()
class TaskRoutedBackbone(AdaptedBackbone):
    """A frozen mmseg backbone with ASE experts beside its FFNs.

    Args:
        backbone (dict): Config of the mmseg backbone, e.g. ``dict(type='SwinTransformer',
            embed_dims=96, depths=(2, 2, 6, 2), ...)``. Its weights come from
            ``init_cfg=dict(type='Pretrained', checkpoint=PATH)`` or ``pretrained=PATH`` (a
            local file in mmseg's format, or the original Swin / SegFormer release, converted
            as mmseg's converters do), loaded at :meth:`init_weights` with a strict key check.
        tasks (Sequence[str]): Task names; one router (and task embedding) per task, in order.
        adapter, lora, mlp_moe, task_embedding: As :class:`~.ase_vit.ASEViT` (typed configs of
            :mod:`mmase.models.injection.adapter_configs`, same defaults); ``blocks`` counts
            blocks over all stages, ``stages`` selects stages. The pre-redesign key
            ``experts`` is an error naming ``adapter``.
        trainable (Sequence[str]): Extra parameter-name patterns to train. Default: ().
        frozen (bool): Freeze everything. Default: False.
        with_cp (bool): Activation checkpointing of every block (the layout's); leave the inner
            backbone's own ``with_cp`` off. Default: False.
        multitask_mode (str): ``'batched'`` | ``'sequential'``. Default: 'batched'.
        record_routing (bool): Record routing statistics. Default: False.
        init_cfg (dict, optional): Must be None: the inner backbone's weights are set here.

    Forward: ``(N, 3, H, W)`` -> the inner backbone's outputs as a tuple (Swin, MiT: one map
    per ``out_indices`` stage, widths per stage; ViT, BEiT: per ``out_indices`` layer).
    """

    def __init__(self,
                 backbone: dict,
                 tasks: Sequence[str] = ('semseg', ),
                 adapter: Optional[dict] = dict(),
                 lora: Optional[dict] = None,
                 task_embedding: Union[bool, Sequence[str]] = False,
                 mlp_moe: Optional[dict] = None,
                 trainable: Sequence[str] = (),
                 frozen: bool = False,
                 with_cp: bool = False,
                 multitask_mode: str = 'batched',
                 record_routing: bool = False,
                 init_cfg: Optional[dict] = None,
                 **renamed):
        check_renamed_keys(renamed, 'TaskRoutedBackbone')
        if renamed:
            raise TypeError(f'TaskRoutedBackbone got unknown keys {sorted(renamed)}')
        super().__init__(tasks, multitask_mode, record_routing, init_cfg=None)
        if init_cfg is not None:
            raise ValueError('init_cfg of TaskRoutedBackbone must be None: set the inner '
                             "backbone's weights with backbone.init_cfg=dict(type='Pretrained', "
                             'checkpoint=...)')
        cfgs = parse_adapter_configs(self.tasks, adapter, lora, mlp_moe, task_embedding)
        inner_cfg, checkpoint, field = self._pop_pretrained(backbone)
        self.backbone = MODELS.build(inner_cfg)
        self.backbone.init_weights()  # mmseg's own init (the checkpoint loads at init_weights)
        self._adapt(self.backbone, layout_for(self.backbone), cfgs, checkpoint, field,
                    trainable, frozen, with_cp, record_routing, prefix='backbone.')
        print_log(f'TaskRoutedBackbone({self.layout.name}): experts beside '
                  f'{len(self.adapter_names)} modules {self.adapter_names}; plain LoRA on '
                  f'{len(self.lora_names)} modules {self.lora_names}', logger='current')

    @property
    def wrapped_names(self):
        """Every wrapped module, relative to the inner backbone: experts, then plain LoRA."""
        return self.adapter_names + self.mlp_moe_names + self.lora_names

    # ------------------------------------------------------------------------------------------
    # the two halves of a forward (composed by MultiTaskBackbone)
    def _embed(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """The inner backbone has no separable stem: the images, flattened to ``(N, 3, H*W)``
        so that the batched pass can repeat them per task."""
        if inputs.dim() != 4:
            raise ValueError(f'inputs must be (N, C, H, W), got shape {tuple(inputs.shape)}')
        return inputs.flatten(2), tuple(inputs.shape[2:])

    def _encode(self, x: torch.Tensor, grid: Tuple[int, int]) -> Tuple[torch.Tensor]:
        return tuple(self.backbone(x.reshape(x.shape[0], x.shape[1], *grid)))

    @staticmethod
    def _pop_pretrained(backbone: dict) -> Tuple[dict, Optional[str], str]:
        """The inner config without its checkpoint, the checkpoint path, the field naming it."""
        if not isinstance(backbone, dict) or 'type' not in backbone:
            raise TypeError('backbone must be an mmseg backbone config dict with a type')
        cfg = copy.deepcopy(dict(backbone))
        pretrained = cfg.pop('pretrained', None)
        init_cfg = cfg.pop('init_cfg', None)
        if pretrained is not None and init_cfg is not None:
            raise ValueError('backbone.pretrained and backbone.init_cfg are both set; give one')
        if pretrained is not None:
            if not isinstance(pretrained, str):
                raise TypeError(f'backbone.pretrained must be a path, got {pretrained!r}')
            return cfg, pretrained, 'backbone.pretrained'
        if init_cfg is not None:
            if not isinstance(init_cfg, dict) or init_cfg.get('type') != 'Pretrained' or \
                    not isinstance(init_cfg.get('checkpoint'), str):
                raise ValueError(f"backbone.init_cfg={init_cfg!r}: only dict(type='Pretrained', "
                                 f'checkpoint=PATH) is supported here')
            return cfg, init_cfg['checkpoint'], 'backbone.init_cfg.checkpoint'
        return cfg, None, 'backbone.init_cfg.checkpoint'
