"""What the task-routed wrapper must know of each mmseg transformer backbone: a registry.

A layout tells, for one backbone class, where the first stage's tokens are formed (the module
whose output gets the task embedding), how many stages there are and which stage a module
name belongs to, the width of the first stage's tokens, and how its checkpoints look (mmseg's
key names, the keys of a released classification checkpoint that the backbone does not have,
the original release's key names and their conversion, resampled position tables).

Registered: mmseg's ``SwinTransformer``, ``MixVisionTransformer`` (SegFormer's MiT) and
``VisionTransformer``. Another family registers a :class:`TransformerLayout` subclass with
:func:`register_layout`.
"""
import re
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log

#: Backbone class name -> layout class.
LAYOUTS: Dict[str, type] = {}


def register_layout(*names: str):
    """Class decorator: register a layout for the backbone classes ``names``."""

    def decorator(cls):
        for name in names:
            LAYOUTS[name] = cls
        return cls

    return decorator


def layout_for(backbone: nn.Module, field: str = 'backbone.type') -> 'TransformerLayout':
    """The layout of a built backbone; ``field`` names the config key in the error."""
    name = type(backbone).__name__
    if name not in LAYOUTS:
        raise ValueError(f'{field}={name!r} has no transformer layout (where its tokens are '
                         f'formed, its stages, its checkpoints); registered: '
                         f'{sorted(LAYOUTS)} (add one with register_layout)')
    return LAYOUTS[name](backbone)


class TransformerLayout:
    """Base layout. Subclasses set the class attributes and override what differs.

    Attributes:
        token_module (str): Submodule whose output holds the first stage's tokens ``(N, L, C)``
            (a tensor, or a tuple whose first item is the tokens).
        stage_pattern (str | None): Regular expression with one group, the stage index, matched
            at the start of a module name; None: one stage.
        may_miss (tuple[str]): Patterns of backbone keys a released checkpoint lacks by design
            (kept at their init; reported).
        may_drop (tuple[str]): Patterns of checkpoint keys the backbone does not have by design
            (classifier, final norm of the classifier, cached masks; dropped and reported).
    """

    token_module = ''
    stage_pattern = None
    may_miss: Tuple[str, ...] = ()
    may_drop: Tuple[str, ...] = (r'^head\.', )

    def __init__(self, backbone: nn.Module):
        self.backbone = backbone

    @property
    def name(self) -> str:
        return type(self.backbone).__name__

    def num_stages(self) -> int:
        return 1

    def token_dims(self) -> int:
        raise NotImplementedError

    def stage_of(self, module_name: str) -> int:
        if self.stage_pattern is None:
            return 0
        match = re.match(self.stage_pattern, module_name)
        return -1 if match is None else int(match.group(1))  # -1: outside every stage

    def convert(self, state: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], bool]:
        """Original-release keys -> mmseg's (as mmseg's model converters); ``(state, done)``."""
        return state, False

    def adapt(self, state: Dict[str, torch.Tensor], path: str) -> Dict[str, torch.Tensor]:
        """Resample position tables of another size (as mmseg's ``init_weights`` does)."""
        return state


@register_layout('SwinTransformer')
class SwinLayout(TransformerLayout):
    """mmseg's Swin: tokens after ``patch_embed`` (+ absolute position) and ``drop_after_pos``;
    stages ``stages.i``; output norms ``norm{i}`` are mmseg's (not in ImageNet checkpoints)."""

    token_module = 'drop_after_pos'
    stage_pattern = r'^stages\.(\d+)\.'
    may_miss = (r'^norm\d+\.', )
    may_drop = (r'^head\.', r'^norm\.', r'attn_mask$')

    def num_stages(self) -> int:
        return len(self.backbone.stages)

    def token_dims(self) -> int:
        return int(self.backbone.num_features[0])

    def convert(self, state):
        """The Swin release (``layers.i.blocks.j.attn/mlp``, ``patch_embed.proj``) -> mmseg's
        (``stages``, ``attn.w_msa``, ``ffn.layers``, ``patch_embed.projection``; the patch
        merging's unfold order), as mmseg's ``swin2mmseg`` converter."""
        if not any(k.startswith('layers.') and '.mlp.' in k for k in state):
            return state, False
        converted = {}
        for key, value in state.items():
            new = key
            if key.startswith('layers.'):
                if '.attn.' in key:
                    new = key.replace('.attn.', '.attn.w_msa.')
                elif '.mlp.fc1.' in key:
                    new = key.replace('.mlp.fc1.', '.ffn.layers.0.0.')
                elif '.mlp.fc2.' in key:
                    new = key.replace('.mlp.fc2.', '.ffn.layers.1.')
                elif '.downsample.reduction.' in key:
                    value = _unfold_reduction_order(value)
                elif '.downsample.norm.' in key:
                    value = _unfold_norm_order(value)
                new = 'stages.' + new[len('layers.'):]
            elif key.startswith('patch_embed.proj.'):
                new = key.replace('patch_embed.proj.', 'patch_embed.projection.')
            converted[new] = value
        return converted, True

    def adapt(self, state, path):
        own = self.backbone.state_dict()
        for key in [k for k in state if k.endswith('relative_position_bias_table')]:
            if key not in own or state[key].shape == own[key].shape:
                continue
            (old_len, heads), (new_len, new_heads) = state[key].shape, own[key].shape
            if heads != new_heads:
                continue  # reported as a shape mismatch
            old_side, new_side = int(old_len**0.5), int(new_len**0.5)
            table = state[key].float().t().reshape(1, heads, old_side, old_side)
            table = F.interpolate(table, size=(new_side, new_side), mode='bicubic')
            state[key] = table.reshape(heads, new_len).t().contiguous().to(state[key].dtype)
            print_log(f'pretrained={path}: {key} resampled from {old_side}x{old_side} to '
                      f'{new_side}x{new_side}', logger='current')
        return state


def _unfold_reduction_order(weight: torch.Tensor) -> torch.Tensor:
    out_channels, in_channels = weight.shape
    weight = weight.reshape(out_channels, 4, in_channels // 4)
    return weight[:, [0, 2, 1, 3], :].transpose(1, 2).reshape(out_channels, in_channels)


def _unfold_norm_order(weight: torch.Tensor) -> torch.Tensor:
    channels = weight.shape[0]
    weight = weight.reshape(4, channels // 4)
    return weight[[0, 2, 1, 3], :].transpose(0, 1).reshape(channels)


@register_layout('MixVisionTransformer')
class MiTLayout(TransformerLayout):
    """SegFormer's MiT: tokens from the first stage's overlapping patch embedding
    (``layers.0.0``); stages ``layers.i`` (``[patch_embed, blocks, norm]``)."""

    token_module = 'layers.0.0'
    stage_pattern = r'^layers\.(\d+)\.'

    def num_stages(self) -> int:
        return len(self.backbone.layers)

    def token_dims(self) -> int:
        return int(self.backbone.embed_dims * self.backbone.num_heads[0])

    def convert(self, state):
        """The SegFormer release (``patch_embed{i}``, ``block{i}``, ``norm{i}``, separate
        ``q``/``kv``, linear ``mlp.fc1/fc2``) -> mmseg's (``layers.{i-1}.{0,1,2}``, packed
        ``attn.attn.in_proj_*``, 1x1-conv ``ffn.layers.{0,1,4}``), as mmseg's ``mit2mmseg``."""
        if not any(re.match(r'^block\d+\.', k) for k in state):
            return state, False
        converted = {}
        for key, value in state.items():
            match = re.match(r'^(patch_embed|block|norm)(\d+)\.(.*)$', key)
            if match is None:
                converted[key] = value
                continue
            kind, stage, rest = match.group(1), int(match.group(2)) - 1, match.group(3)
            if kind == 'patch_embed':
                converted[f'layers.{stage}.0.' + rest.replace('proj.', 'projection.')] = value
                continue
            if kind == 'norm':
                converted[f'layers.{stage}.2.{rest}'] = value
                continue
            prefix = f'layers.{stage}.1.'
            if '.attn.kv.' in '.' + rest:
                continue  # packed with q below
            if re.search(r'(^|\.)attn\.q\.', rest):
                kv_key = key.replace('.attn.q.', '.attn.kv.')
                value = torch.cat([value, state[kv_key]], dim=0)
                rest = rest.replace('attn.q.', 'attn.attn.in_proj_')
            elif 'attn.proj.' in rest:
                rest = rest.replace('attn.proj.', 'attn.attn.out_proj.')
            elif 'mlp.' in rest:
                if rest.endswith(('fc1.weight', 'fc2.weight')):
                    value = value.reshape(*value.shape, 1, 1)
                rest = (rest.replace('mlp.', 'ffn.layers.').replace('fc1.', '0.')
                        .replace('dwconv.dwconv.', '1.').replace('fc2.', '4.'))
            converted[prefix + rest] = value
        return converted, True


@register_layout('VisionTransformer')
class ViTLayout(TransformerLayout):
    """mmseg's ViT: tokens (class token included) after the position embedding and its
    dropout (``drop_after_pos``); one stage. Checkpoints in mmseg's format (``vit2mmseg``;
    a timm ViT goes to :class:`~mmase.models.backbones.ASEViT` instead)."""

    token_module = 'drop_after_pos'
    may_drop = (r'^head\.', r'^ln1\.', r'^norm\.')

    def token_dims(self) -> int:
        return int(self.backbone.cls_token.shape[-1])

    def adapt(self, state, path):
        backbone = self.backbone
        pos = state.get('pos_embed')
        if pos is None or pos.shape == backbone.pos_embed.shape or pos.dim() != 3:
            return state
        side = int(round((pos.shape[1] - 1)**0.5))
        h, w = backbone.img_size
        state['pos_embed'] = backbone.resize_pos_embed(
            pos, (h // backbone.patch_size, w // backbone.patch_size), (side, side),
            backbone.interpolate_mode)
        print_log(f'pretrained={path}: pos_embed resampled from {side}x{side}', logger='current')
        return state


def matching(patterns: Tuple[str, ...], keys) -> List[str]:
    """The keys matching one of ``patterns`` (``re.search``), sorted."""
    return sorted(k for k in keys if any(re.search(p, k) for p in patterns))
