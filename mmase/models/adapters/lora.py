"""Plain LoRA (Hu et al., 2022) as the single-expert case of :class:`MoELoRALinear`.

``y = W0 x + (alpha / r) B A x`` with ``A`` kaiming-uniform and ``B`` zero. No second
implementation: a LoRA layer *is* a ``MoELoRALinear`` with one sparse expert, ``top_k=1`` and no
shared experts, which builds no router (its gate is the constant 1).
:class:`LoRAMultiheadAttention` puts the same factors on the packed projections of a
``nn.MultiheadAttention``, whose linears are never called as modules. Both can fold their delta
into the frozen weights for inference (``merge`` / ``unmerge``, :func:`merge_lora` over a model:
:mod:`.lora_merge`).
"""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F

from .lora_merge import MergeableLoRA, merge_lora, unmerge_lora  # noqa: F401
from .moe_lora import LoRAExperts, MoELoRALinear


def LoRALinear(base_layer: nn.Linear, rank: int = 4, alpha: Optional[float] = None,
               num_tasks: int = 1) -> MoELoRALinear:
    """Wrap ``base_layer`` with a plain LoRA adapter.

    Args:
        base_layer (nn.Linear): Layer to adapt (frozen in place).
        rank (int): LoRA rank ``r``. Default: 4.
        alpha (float, optional): Scale numerator, output scale ``alpha / r``; None = ``r``.
        num_tasks (int): Number of task indices the layer accepts (the adapter is shared by all
            of them). Default: 1.

    Returns:
        MoELoRALinear: with ``num_experts=1, top_k=1, num_shared=0, shared_gating='none'``.
    """
    return MoELoRALinear(base_layer, num_tasks=num_tasks, num_experts=1, top_k=1, num_shared=0,
                         rank=rank, alpha=alpha, shared_gating='none')


class LoRAMultiheadAttention(MergeableLoRA, nn.Module):
    """Plain LoRA on the projections of a frozen ``nn.MultiheadAttention`` (as mmcv's
    ``MultiheadAttention`` holds it: mmseg's ViT, SegFormer's efficient attention).

    ``nn.MultiheadAttention`` never calls its projections as modules (the packed
    ``in_proj_weight`` and ``out_proj.weight`` go straight into
    ``F.multi_head_attention_forward``), so LoRA enters as a weight delta: the attention runs
    with ``W_qkv + (alpha / r) B A`` and ``W_proj + (alpha / r) B' A'``, which is exactly
    ``W x + (alpha / r) B A x`` (plain LoRA has constant gates, so its delta is one matrix).
    The attention's parameters and ``out_proj`` are adopted under their own names (checkpoints
    still load by name); the LoRA factors are ``qkv.{lora_A, lora_B}`` and
    ``proj.{lora_A, lora_B}`` (:class:`LoRAExperts` without a router, ``B = 0``).

    Args:
        attn (nn.MultiheadAttention): The attention; frozen in place, not copied. Needs
            equal query/key/value widths (a packed ``in_proj_weight``).
        rank (int): LoRA rank ``r``. Default: 4.
        alpha (float, optional): Scale numerator; None = ``r``.
        targets (Sequence[str]): ``'qkv'`` (the packed input projection) and/or ``'proj'``
            (``out_proj``). Default: both.

    Forward: as ``nn.MultiheadAttention.forward`` (``query``, ``key``, ``value``, ...;
    sequence-first unless ``batch_first``); returns ``(output, weights or None)``.
    """

    TARGETS = ('qkv', 'proj')

    def __init__(self, attn: nn.MultiheadAttention, rank: int = 4,
                 alpha: Optional[float] = None, targets=('qkv', 'proj')):
        super().__init__()
        if not isinstance(attn, nn.MultiheadAttention):
            raise TypeError(f'LoRAMultiheadAttention wraps an nn.MultiheadAttention, got '
                            f'{type(attn).__name__}')
        if not attn._qkv_same_embed_dim:
            raise ValueError('LoRAMultiheadAttention needs a packed in_proj_weight (query, key '
                             'and value of the same width)')
        targets = tuple(targets)
        unknown = [t for t in targets if t not in self.TARGETS]
        if unknown or not targets:
            raise ValueError(f'targets={targets} must name some of {self.TARGETS}')
        for name, param in attn.named_parameters(recurse=False):
            param.requires_grad_(False)
            self.register_parameter(name, param)
        for param in attn.out_proj.parameters():
            param.requires_grad_(False)
        self.out_proj = attn.out_proj
        for key in ('embed_dim', 'num_heads', 'dropout', 'batch_first', 'add_zero_attn'):
            setattr(self, key, getattr(attn, key))
        self.bias_k, self.bias_v = attn.bias_k, attn.bias_v
        dims = self.embed_dim
        weight = self.in_proj_weight
        factory = dict(device=weight.device, dtype=weight.dtype)
        lora = dict(num_experts=1, top_k=1, num_shared=0, rank=rank, alpha=alpha,
                    shared_gating='none', **factory)
        self.qkv = LoRAExperts(dims, 3 * dims, **lora) if 'qkv' in targets else None
        self.proj = LoRAExperts(dims, dims, **lora) if 'proj' in targets else None
        self._init_merge()

    #: plain LoRA only: always foldable into the packed weights (:meth:`merge`)
    mergeable = True

    def _merge_targets(self):
        targets = []
        if self.qkv is not None:
            targets.append(('in_proj_weight', self.in_proj_weight,
                            lambda: self._delta(self.qkv)))
        if self.proj is not None:
            targets.append(('out_proj.weight', self.out_proj.weight,
                            lambda: self._delta(self.proj)))
        return targets

    @staticmethod
    def _delta(experts: Optional[LoRAExperts]):
        return None if experts is None else experts.scaling * experts.lora_B @ experts.lora_A

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        if self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        self._check_merged_use()
        in_w, out_w = self.in_proj_weight, self.out_proj.weight
        delta_in, delta_out = (None, None) if self.merged else (self._delta(self.qkv),
                                                                self._delta(self.proj))
        in_w = in_w if delta_in is None else in_w + delta_in
        out_w = out_w if delta_out is None else out_w + delta_out
        out, weights = F.multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, in_w, self.in_proj_bias,
            self.bias_k, self.bias_v, self.add_zero_attn, self.dropout, out_w,
            self.out_proj.bias, training=self.training, key_padding_mask=key_padding_mask,
            need_weights=need_weights, attn_mask=attn_mask,
            average_attn_weights=average_attn_weights, is_causal=is_causal)
        if self.batch_first:
            out = out.transpose(0, 1)
        return out, weights
