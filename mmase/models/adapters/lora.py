"""Plain LoRA (Hu et al., 2022) as the single-expert case of :class:`MoELoRALinear`.

``y = W0 x + (alpha / r) B A x`` with ``A`` kaiming-uniform and ``B`` zero. No second
implementation: a LoRA layer *is* a ``MoELoRALinear`` with one sparse expert, ``top_k=1`` and no
shared experts, which builds no router (its gate is the constant 1).
"""
from typing import Optional

import torch.nn as nn

from .moe_lora import MoELoRALinear


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
