"""FGMoEDecoder: a multi-task transformer decoder whose MLPs are FGMoE layers.

Our reading of FGMoE (Xu, Ye and Su, 2025, arXiv 2507.19077; abstract only, see
``configs/fgmoe/README.md``): fine-tuning trains "only ... the parameters of the decoder", so the
fine-grained experts live in a multi-task decoder on a frozen encoder (as in the authors'
earlier decoder-side designs, DeMT and DeGMix). Everything below that the abstract does not
state is *ours*:

- **Fused, one scale.** Each encoder level ``i`` is projected by a 1x1 convolution
  ``in_channels[i] -> embed_dims``, resized (bilinear) to the size of level ``fuse_index`` and
  summed; a LayerNorm follows. The blocks run on this one token map, not per scale: a ViT
  encoder's levels all share one scale (per-scale blocks would repeat the same work 4 times),
  and for a hierarchical encoder (Swin, MiT) fusing to its 1/16 level keeps attention at the
  ViT's token count instead of 16x more tokens at 1/4. No position embedding is added: the
  encoder's features carry position.
- **Blocks.** ``num_blocks`` pre-norm transformer blocks (timm layout, :class:`Block`):
  self-attention shared by all tasks, then the MLP turned into
  :class:`~mmase.models.adapters.FGMoE`: intra-task slices of the hidden dimension
  (``num_experts`` slices, top-``k`` routed per token), ``num_shared`` always-on slices per
  task, and a global expert mixed in by a gate on the token and the task. Here the global
  expert is the block's own dense MLP, *trainable* (nothing is pretrained in the decoder;
  ``train_global_expert=True``), and each task's slices start as copies of it.
- **Outputs.** The tokens after each block of ``out_indices``, each through its own LayerNorm,
  as ``(N, embed_dims, h, w)`` maps: the multi-level input of one light head per task.

The module knows nothing of task names: :meth:`fuse` is task-agnostic (it runs once per
batch), :meth:`decode` takes an int task index or one index per sample (a batch holding every
task, as ASEViT's batched pass).
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from timm.layers import trunc_normal_

from mmase.models.adapters import FGMoE, check_int_arg
from mmase.models.backbones.timm_vit_layout import TimmViTLayout
from mmase.models.backbones.vit_layers import Block
from mmase.models.injection import (TaskContext, inject, parse_adapter_configs,
                                    register_layout)

#: Defaults of the ``mlp_moe`` dict that differ from the encoder's (the typed
#: :class:`~mmase.models.injection.FFNExpertsConfig` of FGMoE): the global expert trains here.
DECODER_MLP_MOE_DEFAULTS = dict(train_global_expert=True)

# the decoder's blocks are the timm-named ViT's: the same layout puts its FGMoE layers in
register_layout('FGMoEDecoder')(TimmViTLayout)


def check_in_channels(in_channels, field: str = 'in_channels') -> Tuple[int, ...]:
    """A non-empty sequence of positive ints -> tuple."""
    if isinstance(in_channels, int) or not isinstance(in_channels, (list, tuple)) \
            or not in_channels:
        raise TypeError(f'{field} must be a non-empty list of channel widths (one per encoder '
                        f'feature map), got {in_channels!r}')
    for width in in_channels:
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f'{field}={list(in_channels)}: {width!r} is not a positive int')
    return tuple(in_channels)


@MODELS.register_module()
class FGMoEDecoder(BaseModule):
    """Multi-task decoder: fused encoder features -> FGMoE transformer blocks -> task maps.

    Args:
        in_channels (Sequence[int]): Width of each encoder feature map, in order.
        num_tasks (int): Task indices ``T`` (one router per task and block).
        embed_dims (int): Decoder width ``C``. Default: 256.
        num_blocks (int): Transformer blocks. Default: 2.
        num_heads (int): Attention heads; must divide ``embed_dims``. Default: 8.
        mlp_ratio (float): MLP hidden size ``H = embed_dims * mlp_ratio`` (the slices
            partition it). Default: 4.0.
        fuse_index (int): The encoder level whose spatial size the fused map takes (negative
            counts from the end). Default: -1.
        out_indices (Sequence[int], optional): Blocks whose outputs are returned (None = all).
        mlp_moe (dict): FGMoE settings (:data:`DECODER_MLP_MOE_DEFAULTS`): ``num_experts``
            (16 slices, shared ones included; must divide ``H``), ``top_k`` (6),
            ``num_shared`` (2), ``global_expert`` (True), ``task_specific_experts`` (True),
            ``train_global_expert`` (True), ``load_balance_weight`` (0.0),
            ``mi_loss_weight`` (0.0).
        drop_path_rate (float): Stochastic depth, linearly increasing. Default: 0.
        align_corners (bool): Of the resizes to the fused size. Default: False.
        record_routing (bool): Record routing statistics in the FGMoE layers. Default: False.
        init_cfg (dict, optional): mmengine init config.

    Shapes:
        - :meth:`fuse`: maps ``(N, in_channels[i], h_i, w_i)`` -> tokens ``(N, h * w, C)``
          and ``(h, w)`` (the size of level ``fuse_index``).
        - :meth:`decode`: tokens ``(N, h * w, C)``, task int or LongTensor ``(N,)`` ->
          tuple of ``(N, C, h, w)``, one per ``out_indices`` entry.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 num_tasks: int,
                 embed_dims: int = 256,
                 num_blocks: int = 2,
                 num_heads: int = 8,
                 mlp_ratio: float = 4.0,
                 fuse_index: int = -1,
                 out_indices: Optional[Sequence[int]] = None,
                 mlp_moe: Optional[dict] = None,
                 drop_path_rate: float = 0.0,
                 align_corners: bool = False,
                 record_routing: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.in_channels = check_in_channels(in_channels)
        check_int_arg('num_tasks', num_tasks, 1)
        check_int_arg('embed_dims', embed_dims, 1)
        check_int_arg('num_blocks', num_blocks, 1)
        check_int_arg('num_heads', num_heads, 1)
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        if isinstance(fuse_index, bool) or not isinstance(fuse_index, int) \
                or not -len(self.in_channels) <= fuse_index < len(self.in_channels):
            raise ValueError(f'fuse_index={fuse_index!r} is not an index of the '
                             f'{len(self.in_channels)} encoder feature maps (in_channels)')
        self.num_tasks = num_tasks
        self.embed_dims = embed_dims
        self.num_blocks = num_blocks
        self.fuse_index = fuse_index % len(self.in_channels)
        self.out_indices = self._parse_out_indices(out_indices)
        self.hidden_dims = int(embed_dims * float(mlp_ratio))
        if mlp_moe is not None and not isinstance(mlp_moe, dict):
            raise TypeError(f'mlp_moe must be a dict or None, got {type(mlp_moe).__name__}')
        if 'type' in (mlp_moe or {}):
            raise ValueError("mlp_moe.type: the decoder's expert layers are FGMoE; drop 'type'")
        cfgs = parse_adapter_configs(
            tuple(f'task{i}' for i in range(num_tasks)), adapter=None,
            mlp_moe=dict(DECODER_MLP_MOE_DEFAULTS, **(mlp_moe or {}), type=FGMoE),
            hidden_dims=self.hidden_dims)
        self.mlp_moe_cfg = cfgs.mlp_moe
        self.load_balance_weight = float(cfgs.mlp_moe.load_balance_weight)
        self.mi_loss_weight = float(cfgs.mlp_moe.mi_loss_weight)
        self.align_corners = align_corners

        self.projections = nn.ModuleList(
            [nn.Conv2d(width, embed_dims, kernel_size=1) for width in self.in_channels])
        self.fuse_norm = nn.LayerNorm(embed_dims, eps=1e-6)
        rates = torch.linspace(0, drop_path_rate, num_blocks).tolist()
        self.blocks = nn.ModuleList(
            [Block(embed_dims, num_heads, float(mlp_ratio), rate) for rate in rates])
        for module in self.blocks.modules():  # timm-style init, before FGMoE copies the MLPs
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        self.task_context = TaskContext()
        self._injection = inject(self, self, TimmViTLayout(self), cfgs, self.task_context,
                                 record_routing)
        self.out_norms = nn.ModuleList(
            [nn.LayerNorm(embed_dims, eps=1e-6) for _ in self.out_indices])

    # ------------------------------------------------------------------------------------------
    def _parse_out_indices(self, out_indices) -> Tuple[int, ...]:
        if out_indices is None:
            return tuple(range(self.num_blocks))
        out_indices = (out_indices, ) if isinstance(out_indices, int) else tuple(out_indices)
        result = []
        for index in out_indices:
            if isinstance(index, bool) or not isinstance(index, int) \
                    or not -self.num_blocks <= index < self.num_blocks:
                raise ValueError(f'out_indices: {index!r} is not a block index of a '
                                 f'{self.num_blocks}-block decoder (num_blocks)')
            result.append(index % self.num_blocks)
        if not result or len(set(result)) != len(result):
            raise ValueError(f'out_indices={out_indices} must name distinct blocks')
        return tuple(sorted(result))

    @property
    def routed_layer_names(self) -> Tuple[str, ...]:
        """Names of the FGMoE layers (``blocks.<i>.mlp``), in block order."""
        return tuple(self._injection.mlp_moe_names)

    # ------------------------------------------------------------------------------------------
    def fuse(self, feats: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Encoder maps -> fused tokens ``(N, h * w, C)`` and the grid ``(h, w)``."""
        if len(feats) != len(self.in_channels):
            raise ValueError(f'the encoder gives {len(feats)} feature maps but in_channels='
                             f'{list(self.in_channels)} expects {len(self.in_channels)}')
        widths = [f.shape[1] for f in feats]
        if tuple(widths) != self.in_channels:
            raise ValueError(f'in_channels={list(self.in_channels)} does not match the widths '
                             f'{widths} of the encoder feature maps')
        size = tuple(feats[self.fuse_index].shape[2:])
        fused = None
        for feat, projection in zip(feats, self.projections):
            out = projection(feat)
            if tuple(out.shape[2:]) != size:
                out = F.interpolate(out, size=size, mode='bilinear',
                                    align_corners=self.align_corners)
            fused = out if fused is None else fused + out
        return self.fuse_norm(fused.flatten(2).transpose(1, 2)), size

    def decode(self, tokens: torch.Tensor, grid: Tuple[int, int],
               task) -> Tuple[torch.Tensor, ...]:
        """Run the FGMoE blocks for ``task`` (int, or LongTensor ``(N,)``); returns maps."""
        outs = []
        x = tokens
        with self.task_context.use(task):
            for i, block in enumerate(self.blocks):
                x = block(x)
                if i not in self.out_indices:
                    continue
                out = self.out_norms[len(outs)](x)
                outs.append(out.transpose(1, 2).reshape(x.shape[0], self.embed_dims, *grid))
        return tuple(outs)

    def forward(self, feats: Sequence[torch.Tensor], task) -> Tuple[torch.Tensor, ...]:
        return self.decode(*self.fuse(feats), task)
