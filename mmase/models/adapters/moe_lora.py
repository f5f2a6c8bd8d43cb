"""LoRA mixture-of-experts with adaptive shared experts (ASE): the experts and the fused kernel.

Implements Li et al., 2025, "Adaptive Shared Experts with LoRA-Based Mixture of Experts for
Multi-Task Learning" (arXiv 2510.00570), Sec. 3, in the paper's ``(N/k/S/r)`` notation: ``N``
LoRA experts of rank ``r`` *including* the ``S`` shared ones, so the sparse pool holds
``N - S``; a token of task ``t`` gets router logits ``z = R_t x`` over the ``N - S`` sparse and
``S`` shared experts, and the top-``k`` sparse experts and all shared experts are combined:

    delta(x) = (alpha / r) * sum_{i in I ∪ shared} g_i B_i A_i x.

Where the sum is added is the host's choice: beside a frozen linear ``W0`` (per-linear
placement, :class:`MoELoRALinear`, ``y = W0 x + delta(x)``) or beside a frozen FFN
(the paper's placement, :class:`~mmase.models.adapters.MoELoRAFFN`,
``y = FFN(x) + delta(x)``).

Gating modes (``shared_gating``, gates in :func:`~mmase.models.adapters.routers.select_gates`):
    - ``'adaptive'`` (ASE): ``g`` is one softmax over the ``k`` selected sparse logits and the
      ``S`` shared logits jointly, so the router decides how much the shared experts count.
    - ``'fixed'`` (the paper's "naive shared expert"): softmax over the ``k`` selected sparse
      logits; every shared expert has weight 1.
    - ``'none'``: no shared experts (``S`` must be 0); softmax over the selected sparse logits.

Fast path: the ``A`` matrices of all experts form one ``(N r, d_in)`` weight and the ``B``
matrices one ``(d_out, N r)`` weight, so every token costs two skinny matmuls whatever the
number of experts; the gates become a per-token scale on each expert's block of ``r`` ranks:
``delta = ((x A^T) * expand_r(scaling * g)) B^T`` with ``g`` zero outside the selected
experts. The router joins the ``A`` matmul, the output is accumulated into the base layer's
output when there is one, and a hand-written backward skips autograd's intermediate copies.
No per-expert Python loop, no per-expert tensors.

The module knows nothing of ViTs or task names: it sees a tensor and a task index (an int for
the whole batch, or a LongTensor ``(N,)`` with one index per sample).
"""
import contextlib
import math
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .lora_merge import MergeableLoRA
from .moe_lora_args import (GATING_MODES, _is_int, check_int_arg,  # noqa: F401 (re-exported)
                            check_moe_lora_args, has_router)
from .moe_lora_kernel import _MoELoRAFunction
from .routers import RoutingBookkeeping, TaskIndex, TaskRouter, check_task_index

class LoRAExperts(RoutingBookkeeping, nn.Module):
    """``N`` task-routed LoRA experts ``(N/k/S/r)`` mapping ``d_in -> d_out``: the parameters,
    the routing and the fused forward shared by every placement.

    ``A`` is kaiming-uniform initialised and ``B`` is zero, so fresh experts add nothing.
    When the gates cannot depend on the token (one sparse expert and no adaptively gated shared
    expert, e.g. plain LoRA ``1/1/0/r``) no router is built and the gates are the constant 1.

    Args:
        in_features (int): ``d_in``.
        out_features (int): ``d_out``.
        num_tasks (int): Number of task routers ``T``. Default: 1.
        num_experts (int): ``N``, experts *including* the shared ones. Default: 1.
        top_k (int): ``k``, sparse experts selected per token (of ``N - S``). Default: 1.
        num_shared (int): ``S``, always-active shared experts. Default: 0.
        rank (int): ``r``, rank of each expert. Default: 4.
        alpha (float, optional): Scale numerator; output scale is ``alpha / rank``.
            None means ``alpha = rank`` (scale 1). Default: None.
        shared_gating (str): ``'adaptive'`` | ``'fixed'`` | ``'none'``. Default: ``'adaptive'``.
        load_balance (bool): In training mode, accumulate the Switch load-balancing loss (see
            :func:`~mmase.models.adapters.routers.load_balance_loss`); fetch it with
            :meth:`pop_load_balance`. Default: False.
        mutual_information (bool): In training mode, accumulate the routing probabilities of
            Mod-Squad's task-expert mutual information; fetch it with
            :meth:`pop_mutual_information`. Default: False.
        record_routing (bool): Accumulate routing statistics (see :meth:`routing_stats`).
            Default: False.
        device, dtype: Of the new parameters. Default: None.
    """

    #: Parameters holding expert weights (for parameter budgets; routers are separate).
    expert_parameter_names = ('lora_A', 'lora_B')

    def __init__(self, in_features: int, out_features: int, num_tasks: int = 1,
                 num_experts: int = 1, top_k: int = 1, num_shared: int = 0, rank: int = 4,
                 alpha: Optional[float] = None, shared_gating: str = 'adaptive',
                 load_balance: bool = False, mutual_information: bool = False,
                 record_routing: bool = False, device=None, dtype=None):
        super().__init__()
        check_moe_lora_args(num_experts, top_k, num_shared, rank, shared_gating, alpha)
        if not _is_int(num_tasks) or num_tasks < 1:
            raise ValueError(f'num_tasks={num_tasks!r} must be an int >= 1')
        self.in_features = in_features
        self.out_features = out_features
        self.num_tasks = num_tasks
        self.num_experts = num_experts
        self.num_sparse = num_experts - num_shared
        self.top_k = top_k
        self.num_shared = num_shared
        self.rank = rank
        self.alpha = float(rank if alpha is None else alpha)
        self.scaling = self.alpha / rank
        self.shared_gating = shared_gating
        self.load_balance = load_balance
        self.record_routing = record_routing

        factory = dict(device=device, dtype=dtype)
        # Expert e owns rows [e*r, (e+1)*r) of lora_A and the same columns of lora_B; the
        # sparse experts come first, then the shared ones.
        self.lora_A = nn.Parameter(torch.empty(num_experts * rank, in_features, **factory))
        self.lora_B = nn.Parameter(torch.empty(out_features, num_experts * rank, **factory))
        self.router = TaskRouter(in_features, num_experts, num_tasks).to(**factory) if \
            has_router(num_experts, num_shared, shared_gating) else None
        if mutual_information and self.router is None:
            raise ValueError('mutual_information needs a router, but these gates are '
                             'constant (one sparse expert, no adaptively gated shared expert)')
        self.mutual_information = mutual_information
        self.reset_parameters()
        self._init_bookkeeping()

    def reset_parameters(self) -> None:
        """A: kaiming-uniform (as ``nn.Linear``, per expert fan-in d_in); B: zeros."""
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)
        if self.router is not None:
            self.router.reset_parameters()

    @property
    def num_gated(self) -> int:
        """Logit columns the router's softmax gates (the routing distribution)."""
        return self.num_experts if self.shared_gating == 'adaptive' else self.num_sparse

    def routed_forward(self, x: torch.Tensor, task: TaskIndex,
                       base: Optional[nn.Linear] = None) -> torch.Tensor:
        """``base(x) + delta(x)`` (``delta(x)`` alone without ``base``).

        Args:
            x (Tensor): ``(N, *, d_in)``.
            task (int | Tensor): Task index, int or LongTensor ``(N,)``.
            base (nn.Linear, optional): Frozen linear fused into the same kernel.

        Returns:
            Tensor: ``(N, *, d_out)``.
        """
        check_task_index(task, self.num_tasks, x.shape[0])
        if self.router is None:  # constant gates (all 1): plain LoRA over all ranks
            if self.record_routing:
                num_tokens = x.numel() // self.in_features
                self._record(x.new_ones(num_tokens, self.num_experts), None, task,
                             x.shape[0])
            delta = F.linear(F.linear(x, self.lora_A) * self.scaling, self.lora_B)
            return delta if base is None else base(x) + delta

        lead_shape = x.shape[:-1]
        if isinstance(task, int):
            router_w = self.router.weight[task]
        else:
            router_w = self.router.weight.index_select(0, task)
        tensors = [x.reshape(-1, self.in_features).contiguous(),
                   None if base is None else base.weight, None if base is None else base.bias,
                   self.lora_A, self.lora_B, router_w]
        device_type = x.device.type
        autocast = torch.is_autocast_enabled(device_type)
        if autocast:  # run the fused function in the autocast dtype, with autocast off inside
            dtype = torch.get_autocast_dtype(device_type)
            tensors = [t if t is None else t.to(dtype) for t in tensors]
        with torch.autocast(device_type, enabled=False) if autocast else contextlib.nullcontext():
            out, logits, gates, top_idx = _MoELoRAFunction.apply(
                *tensors, self.num_sparse, self.top_k, self.rank, self.scaling,
                self.shared_gating, x.shape[0])
        if top_idx.shape[1] == 0:
            top_idx = None
        self._after_routing(logits, top_idx, self.num_sparse, self.num_gated, task, x.shape[0],
                            **self._masses(gates))
        return out.view(*lead_shape, self.out_features)

    def forward(self, x: torch.Tensor, task: TaskIndex) -> torch.Tensor:
        """``delta(x)``: ``(N, *, d_in)`` -> ``(N, *, d_out)``."""
        return self.routed_forward(x, task)

    # ----------------------------------------------------------------------------------------
    # routing statistics (see RoutingBookkeeping)
    def _masses(self, gates: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Per-token total gate weight of the sparse and of the shared experts."""
        return dict(sparse_mass=gates[:, :self.num_sparse].sum(-1),
                    shared_mass=gates[:, self.num_sparse:].sum(-1))

    def _record(self, gates: torch.Tensor, top_idx: Optional[torch.Tensor], task: TaskIndex,
                batch_size: int) -> None:
        """Record selections and the sparse / shared gate mass of ``gates`` ``(M, N)``."""
        self._record_routing(top_idx, self.num_sparse, task, batch_size, gates.shape[0],
                             gates.device, **self._masses(gates))

    def routing_stats(self) -> Optional[Dict[str, torch.Tensor]]:
        """Routing statistics recorded while ``record_routing`` was on, or None.

        Returns:
            dict: ``counts`` ``(T, N - S)`` times each sparse expert was selected, ``tokens``
            ``(T,)`` tokens routed, ``sparse_mass`` / ``shared_mass`` ``(T,)`` mean total gate
            weight of the sparse / shared experts per token (all float64, on the layer's
            device). Without a router (constant gates) every expert counts as selected with
            its constant gate.
        """
        return super().routing_stats()

    def notation(self) -> str:
        """The paper's ``N/k/S/r``."""
        return f'{self.num_experts}/{self.top_k}/{self.num_shared}/{self.rank}'

    def extra_repr(self) -> str:
        return (f'in_features={self.in_features}, out_features={self.out_features}, '
                f'num_tasks={self.num_tasks}, experts N/k/S/r={self.notation()}, '
                f'alpha={self.alpha:g}, shared_gating={self.shared_gating!r}')


class MoELoRALinear(MergeableLoRA, LoRAExperts):
    """A frozen linear layer plus task-routed LoRA experts (per-linear placement).

    ``y = W0 x + (alpha / r) * sum_i g_i B_i A_i x``. The wrapped layer is kept as
    ``base_layer`` and frozen (PEFT style: wraps, never copies), so a fresh adapter leaves the
    layer's output unchanged. Plain LoRA is the case ``num_experts=1, top_k=1, num_shared=0``
    (see :func:`~mmase.models.adapters.lora.LoRALinear`).

    Args:
        base_layer (nn.Linear): The layer to adapt; frozen in place, not copied.
        **kwargs: The expert configuration of :class:`LoRAExperts` (``num_tasks``,
            ``num_experts`` = N with the shared ones, ``top_k``, ``num_shared``, ``rank``,
            ``alpha``, ``shared_gating``, ``load_balance``, ``mutual_information``,
            ``record_routing``).

    Shapes:
        - ``x``: ``(N, *, d_in)``; ``task``: int or LongTensor ``(N,)``.
        - output: ``(N, *, d_out)``.
    """

    def __init__(self, base_layer: nn.Linear, **kwargs):
        if not isinstance(base_layer, nn.Linear):
            raise TypeError(f'MoELoRALinear wraps an nn.Linear, got {type(base_layer).__name__}')
        super().__init__(base_layer.in_features, base_layer.out_features,
                         device=base_layer.weight.device, dtype=base_layer.weight.dtype,
                         **kwargs)
        self.base_layer = base_layer
        for param in self.base_layer.parameters():
            param.requires_grad_(False)
        self._init_merge()

    @property
    def mergeable(self) -> bool:
        """Plain LoRA (no router, constant gates) can be folded into ``base_layer``."""
        return self.router is None

    def _merge_targets(self):
        if not self.mergeable:
            raise RuntimeError('routed experts have token-dependent gates: only plain LoRA '
                               '(1/1/0/r) can be merged')
        return [('base_layer.weight', self.base_layer.weight, self.get_delta_weight)]

    def forward(self, x: torch.Tensor, task: Optional[TaskIndex] = None) -> torch.Tensor:
        """``task`` may be omitted for plain LoRA (no router: the same adapter for every
        task), so hosts that call their linears with ``x`` only (mmseg's Swin window attention)
        can hold one; a routed layer needs it. Merged (:meth:`merge`): ``base_layer(x)``."""
        if task is None:
            if self.router is not None:
                raise TypeError('routed MoELoRALinear needs a task index (int or LongTensor '
                                '(N,)); only plain LoRA (no router) runs without one')
            task = 0
        self._check_merged_use()
        if self.merged:
            check_task_index(task, self.num_tasks, x.shape[0])
            if self.record_routing:
                self._record(x.new_ones(x.numel() // self.in_features, self.num_experts), None,
                             task, x.shape[0])
            return self.base_layer(x)
        return self.routed_forward(x, task, base=self.base_layer)

    def get_delta_weight(self) -> torch.Tensor:
        """``(d_out, d_in)`` weight the experts add, for constant gates (plain LoRA) only."""
        if self.router is not None:
            raise RuntimeError('routed experts have token-dependent gates: no single delta '
                               'weight exists (only plain LoRA, 1/1/0/r, can be merged)')
        return self.scaling * self.lora_B @ self.lora_A
