"""Gates from router logits: top-k over the sparse pool, then one softmax over the selected
logits ('none'), jointly with the shared ones ('adaptive', ASE), or with the shared experts at
weight 1 ('fixed'). Li et al., 2025 (ASE, arXiv 2510.00570), Sec. 3."""
from typing import Optional, Tuple

import torch


def _gate_dtype(tensor: torch.Tensor) -> torch.dtype:
    """At least float32 (half-precision logits are upcast for softmaxes)."""
    return torch.promote_types(tensor.dtype, torch.float32)


def select_gates(logits: torch.Tensor, num_sparse: int, top_k: int, shared_gating: str
                 ) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor,
                            Optional[torch.Tensor]]:
    """Gates from router logits, computed on the selected columns only (see :func:`moe_gates`).

    Differentiable under autograd; the fused MoE-LoRA function calls it without autograd and
    backpropagates through ``soft`` by hand.

    Args:
        logits (Tensor): ``(M, n)`` router logits, ``n = num_sparse + S``, sparse experts first.
        num_sparse (int): Size of the sparse pool ``N - S``.
        top_k (int): ``k``, sparse experts selected per token.
        shared_gating (str): ``'adaptive'`` | ``'fixed'`` | ``'none'``.

    Returns:
        tuple: ``soft`` ``(M, w)``, the softmax over the selected logits (``w = k + S`` for
        'adaptive', ``k`` otherwise); ``columns`` ``(M, w)``, the logit column of each entry of
        ``soft`` (None when ``k == num_sparse``: then ``soft`` covers columns ``0..w-1`` in
        order); the dense ``gates`` ``(M, n)`` (zero for unselected sparse experts, 1 for
        'fixed' shared experts); ``top_idx`` ``(M, k)``, the selected sparse experts (None when
        ``k == num_sparse``).
    """
    num_tokens, num_logits = logits.shape
    num_shared = num_logits - num_sparse
    if top_k < num_sparse:
        top_val, top_idx = logits[:, :num_sparse].topk(top_k, dim=-1, sorted=False)
    else:
        top_val, top_idx = logits[:, :num_sparse], None
    columns = top_idx
    if shared_gating == 'adaptive' and num_shared:
        soft = torch.softmax(torch.cat([top_val, logits[:, num_sparse:]], -1), -1)
        if top_idx is not None:
            shared_cols = torch.arange(num_sparse, num_logits, device=logits.device)
            columns = torch.cat([top_idx, shared_cols.expand(num_tokens, num_shared)], -1)
    else:
        soft = torch.softmax(top_val, -1)
    if columns is None:
        gates = soft if soft.shape[1] == num_logits else torch.cat(
            [soft, soft.new_ones(num_tokens, num_shared)], -1)
    else:
        gates = soft.new_zeros(num_tokens, num_logits).scatter_(1, columns, soft)
        if shared_gating == 'fixed' and num_shared:
            gates[:, num_sparse:] = 1.0
    return soft, columns, gates, top_idx


def moe_gates(logits: torch.Tensor, num_sparse: int, top_k: int,
              shared_gating: str) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Turn router logits into a dense gate matrix over all experts (differentiable).

    Args:
        logits (Tensor): ``(M, num_sparse + S)`` router logits, sparse experts first.
        num_sparse (int): Size of the sparse pool ``N - S``.
        top_k (int): ``k``.
        shared_gating (str): ``'adaptive'`` | ``'fixed'`` | ``'none'``.

    Returns:
        tuple: ``gates`` ``(M, num_sparse + S)`` (zero for unselected sparse experts) and the
        selected sparse expert ids ``(M, k)`` (None when every sparse expert is selected).
    """
    _, _, gates, top_idx = select_gates(logits, num_sparse, top_k, shared_gating)
    return gates, top_idx
