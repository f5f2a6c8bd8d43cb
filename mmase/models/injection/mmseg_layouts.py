"""Layouts of mmseg's transformer backbones: Swin, MiT (SegFormer) and ViT.

Blocks, stages and the first stage's tokens by module name; FFN branches and attention by
module type (:mod:`.mmseg_modules`: mmcv's ``FFN``, SegFormer's ``MixFFN``, Swin's
``WindowMSA``, packed ``nn.MultiheadAttention``); checkpoints in mmseg's format or the original
release, converted as mmseg's converters do, loaded with a strict key check
(:mod:`.mmseg_loading`).
"""
import re
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log

from .layout import FFNSite, Layout, LinearSite, register_layout
from .mmseg_loading import load_mmseg_backbone
from .mmseg_modules import ATTENTION_TYPES, FFN_TYPES


class MMSegLayout(Layout):
    """What mmseg's transformer families share: FFN branches ``<ffn>.layers`` and attention
    found by type inside each block, mmcv FFN linears ``layers.0.0`` / ``layers.1``.

    Attributes:
        may_miss (tuple[str]): Patterns of backbone keys a released checkpoint lacks by design
            (kept at their init; reported).
        may_drop (tuple[str]): Patterns of checkpoint keys the backbone does not have by design
            (classifier, final norm of the classifier, cached masks; dropped and reported).
    """

    may_miss: Tuple[str, ...] = ()
    may_drop: Tuple[str, ...] = (r'^head\.', )

    def _find(self, block: str, types) -> List[Tuple[str, nn.Module]]:
        module = self.backbone.get_submodule(block)
        return [(f'{block}.{name}', sub) for name, sub in module.named_modules()
                if name and isinstance(sub, tuple(types))]

    def ffn(self, block: str) -> Optional[FFNSite]:
        found = self._find(block, FFN_TYPES)
        if not found:
            return None
        name, ffn = found[0]
        width = int(ffn.embed_dims)
        return FFNSite(f'{name}.layers', width, width, FFN_TYPES[type(ffn)])

    def linear(self, block: str, target: str) -> Optional[LinearSite]:
        if target in ('fc1', 'fc2'):
            mlp = self.mlp(block)
            if mlp is None:
                return None
            return LinearSite(f'{mlp[0]}.0.0' if target == 'fc1' else f'{mlp[0]}.1', 'linear',
                              target)
        for name, attn in self._find(block, ATTENTION_TYPES):
            if ATTENTION_TYPES[type(attn)] == 'packed':
                return LinearSite(name, 'packed', target)
            return LinearSite(f'{name}.{target}', 'linear', target)
        return None

    def mlp(self, block: str):
        """mmcv's two-linear ``FFN``: ``layers = [[fc1, act, drop], fc2, drop]``."""
        found = self._find(block, FFN_TYPES)
        if not found or FFN_TYPES[type(found[0][1])]:
            return None
        name, ffn = found[0]
        layers = ffn.layers
        if len(layers) != 3 or not isinstance(layers[1], nn.Linear):
            return None
        first = layers[0]
        return f'{name}.layers', first[0], layers[1], first[1]

    def convert(self, state: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], bool]:
        """Original-release keys -> mmseg's (as mmseg's model converters); ``(state, done)``."""
        return state, False

    def adapt(self, state: Dict[str, torch.Tensor], path: str) -> Dict[str, torch.Tensor]:
        """Resample position tables of another size (as mmseg's ``init_weights`` does)."""
        return state

    def load_pretrained(self, plain, path: str, field: str) -> None:
        load_mmseg_backbone(plain, self, path, field)


@register_layout('SwinTransformer')
class SwinLayout(MMSegLayout):
    """mmseg's Swin: tokens after ``patch_embed`` (+ absolute position) and ``drop_after_pos``;
    stages ``stages.i``; output norms ``norm{i}`` are mmseg's (not in ImageNet checkpoints)."""

    token_module = 'drop_after_pos'
    block_pattern = r'stages\.\d+\.blocks\.\d+'
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
class MiTLayout(MMSegLayout):
    """SegFormer's MiT: tokens from the first stage's overlapping patch embedding
    (``layers.0.0``); stages ``layers.i`` (``[patch_embed, blocks, norm]``)."""

    token_module = 'layers.0.0'
    block_pattern = r'layers\.\d+\.1\.\d+'
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
class ViTLayout(MMSegLayout):
    """mmseg's ViT: tokens (class token included) after the position embedding and its
    dropout (``drop_after_pos``); one stage. Checkpoints in mmseg's format (``vit2mmseg``;
    a timm ViT goes to :class:`~mmase.models.backbones.ASEViT` instead)."""

    token_module = 'drop_after_pos'
    block_pattern = r'layers\.\d+'
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
