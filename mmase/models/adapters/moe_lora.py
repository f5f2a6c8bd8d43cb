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
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .lora_merge import MergeableLoRA
from .routers import (RoutingBookkeeping, TaskIndex, TaskRouter, check_task_index, moe_gates,
                      select_gates)

GATING_MODES = ('adaptive', 'fixed', 'none')


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int_arg(name: str, value, low: int, prefix: str = '') -> None:
    """Raise unless ``value`` is an int (not a bool) ``>= low``; the message names
    ``{prefix}{name}``, e.g. ``'adapter.rank=0 must be >= 1'``."""
    if not _is_int(value):
        raise TypeError(f'{prefix}{name} must be an int, got {value!r}')
    if value < low:
        raise ValueError(f'{prefix}{name}={value} must be >= {low}')


def has_router(num_experts: int, num_shared: int, shared_gating: str) -> bool:
    """Whether ``(N/k/S/r)`` experts need a router: not with one sparse expert and no adaptively
    gated shared expert (e.g. plain LoRA ``1/1/0/r``), whose gates are the constant 1."""
    return not (num_experts - num_shared == 1
                and (num_shared == 0 or shared_gating == 'fixed'))


def check_moe_lora_args(num_experts: int, top_k: int, num_shared: int, rank: int,
                        shared_gating: str, alpha: Optional[float] = None,
                        prefix: str = '', active_experts: Optional[int] = None) -> None:
    """Validate an ``(N/k/S/r)`` expert configuration; errors name ``{prefix}{field}``.

    Args:
        num_experts (int): ``N``, experts per layer *including* the shared ones (>= 1).
        top_k (int): ``k``, sparse experts selected per token, ``1 <= k <= N - S``.
        num_shared (int): ``S``, always-active shared experts, ``0 <= S < N`` (0 when
            ``shared_gating='none'``).
        rank (int): ``r``, rank of every expert (>= 1).
        shared_gating (str): One of ``'adaptive'``, ``'fixed'``, ``'none'``.
        alpha (float, optional): LoRA scale numerator (> 0) or None.
        prefix (str): Prepended to field names in messages, e.g. ``'adapter.'``.
        active_experts (int, optional): A stated ``k + S`` to check against. Default: None.
    """
    for name, value, low in (('num_experts', num_experts, 1), ('top_k', top_k, 1),
                             ('num_shared', num_shared, 0), ('rank', rank, 1)):
        check_int_arg(name, value, low, prefix)
    if num_shared >= num_experts:
        raise ValueError(f'{prefix}num_shared={num_shared} leaves no sparse expert: '
                         f'{prefix}num_experts={num_experts} counts the shared experts too '
                         f'(the paper\'s N/k/S/r), so it must exceed num_shared')
    num_sparse = num_experts - num_shared
    if top_k > num_sparse:
        raise ValueError(f'{prefix}top_k={top_k} exceeds the sparse pool of {num_sparse} '
                         f'experts ({prefix}num_experts={num_experts} - '
                         f'{prefix}num_shared={num_shared})')
    if shared_gating not in GATING_MODES:
        raise ValueError(f'{prefix}shared_gating={shared_gating!r} is not one of {GATING_MODES}')
    if shared_gating == 'none' and num_shared > 0:
        raise ValueError(f"{prefix}shared_gating='none' has no shared experts but "
                         f'{prefix}num_shared={num_shared}; set num_shared=0 or choose '
                         f"'adaptive' / 'fixed'")
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, (int, float))
                              or alpha <= 0):
        raise ValueError(f'{prefix}alpha={alpha!r} must be a positive number (or None for '
                         f'alpha = rank)')
    if active_experts is not None:
        check_int_arg('active_experts', active_experts, 1, prefix)
        if active_experts != top_k + num_shared:
            raise ValueError(f'{prefix}active_experts={active_experts} does not match '
                             f'{prefix}top_k + {prefix}num_shared = {top_k} + {num_shared} = '
                             f'{top_k + num_shared}')


class _MoELoRAFunction(torch.autograd.Function):
    """Fused forward/backward of a routed LoRA mixture, optionally around a frozen linear.

    Forward (``M`` tokens, ``R = N r`` ranks, ``n = N`` logits, ``s = alpha / r``)::

        [h | z] = x [A; R_t]^T          one GEMM for all experts' A and the router
        g       = gates(z)              top-k + softmax over the selected columns, (M, n)
        y       = [x W^T + b] + s (h * expand_r(g)) B^T    accumulated into one output

    The bracket is there only when a base ``weight`` is given (per-linear placement); without
    one ``y`` is the experts' sum alone (placement beside an FFN, whose output the host adds).

    Backward computes only the gradients autograd asks for, writes the rank and router
    gradients into one ``(M, R + n)`` buffer (so the A and router weights share one GEMM each
    way), accumulates ``dx`` in place and never materialises per-expert tensors. With
    per-sample routers (``router_w`` of shape ``(N, n, d_in)``) each sample's ``[A; R]`` is
    stacked into ``(N, R + n, d_in)`` and the GEMMs become batched matmuls over the samples.

    Inputs: ``x`` (M, d_in) contiguous, ``weight`` (d_out, d_in) or None, ``bias`` (d_out,) or
    None, ``lora_A`` (R, d_in), ``lora_B`` (d_out, R), ``router_w`` (n, d_in) or (N, n, d_in).
    Outputs: ``y`` (M, d_out); ``logits`` (M, n) (differentiable, for auxiliary losses);
    ``gates`` (M, n) (at least float32) and ``top_idx`` (M, k) (empty when k == N - S), both
    not differentiable.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, lora_A, lora_B, router_w, num_sparse, top_k, rank,
                scaling, shared_gating, batch_size):
        num_tokens, in_features = x.shape
        total_rank = lora_A.shape[0]
        num_logits = total_rank // rank
        if router_w.dim() == 3:  # one router per sample: one GEMM per sample, A joins each
            fused_w = torch.cat([lora_A.expand(batch_size, -1, -1), router_w], 1)
            hz = torch.bmm(x.view(batch_size, -1, in_features), fused_w.transpose(1, 2)).view(
                num_tokens, total_rank + num_logits)
        else:
            fused_w = torch.cat([lora_A, router_w], 0)
            hz = x.mm(fused_w.t())
        hidden, logits = hz[:, :total_rank], hz[:, total_rank:]
        # Gates in at least float32 (half-precision logits are upcast for the softmax).
        gate_dtype = torch.promote_types(logits.dtype, torch.float32)
        soft, columns, gates, top_idx = select_gates(logits.to(gate_dtype), num_sparse, top_k,
                                                     shared_gating)
        gates_x = gates.to(x.dtype)
        gated = (hidden.view(num_tokens, num_logits, rank) * gates_x.unsqueeze(-1)).view(
            num_tokens, total_rank)
        if weight is None:
            out = gated.mm(lora_B.t())
            if scaling != 1:
                out.mul_(scaling)
        else:
            out = x.mm(weight.t()) if bias is None else torch.addmm(bias, x, weight.t())
            out.addmm_(gated, lora_B.t(), alpha=scaling)

        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, weight, lora_B, fused_w, hidden, gated, gates_x, soft, columns)
        ctx.config = (rank, scaling, batch_size, bias is not None)
        if top_idx is None:
            top_idx = torch.empty(num_tokens, 0, dtype=torch.long, device=x.device)
        ctx.mark_non_differentiable(gates, top_idx)
        return out, logits, gates, top_idx

    @staticmethod
    def backward(ctx, grad_out, grad_logits, grad_gates, grad_idx):
        x, weight, lora_B, fused_w, hidden, gated, gates_x, soft, columns = ctx.saved_tensors
        rank, scaling, batch_size, has_bias = ctx.config
        need_x, need_w, need_b, need_a, need_lora_b, need_router = ctx.needs_input_grad[:6]
        num_tokens, in_features = x.shape
        total_rank = lora_B.shape[1]
        num_logits = total_rank // rank
        shaped = (num_tokens, num_logits, rank)
        grad_x = grad_w = grad_b = grad_a = grad_lora_b = grad_router = None

        only_logits = grad_out is None  # only an auxiliary loss on the logits: no B/W/b grads
        if only_logits:
            grad_out = x.new_zeros(num_tokens, lora_B.shape[0])
            need_w = need_b = need_lora_b = False
        # One copy here instead of one inside every matmul below when the incoming gradient
        # is strided or expanded (e.g. straight from a sum()).
        grad_out = grad_out.contiguous()
        prod = grad_out.mm(lora_B).view(shaped)  # dL/d(gated) / s
        # Rank gradients in columns [0, R), router-logit gradients in [R, R + n).
        grad_hz = x.new_empty(num_tokens, total_rank + num_logits)
        grad_hidden, grad_z = grad_hz[:, :total_rank], grad_hz[:, total_rank:]
        scaled_gates = gates_x if scaling == 1 else gates_x * scaling
        torch.mul(prod, scaled_gates.unsqueeze(-1), out=grad_hidden.view(shaped))
        # Through the gate softmax on the selected columns: d z = soft * (d g - <d g, soft>).
        # Unselected sparse experts get no gradient; 'fixed' shared experts are constants.
        grad_gate = (prod * hidden.view(shaped)).sum(-1).to(soft.dtype)
        width = soft.shape[1]
        picked = grad_gate[:, :width] if columns is None else grad_gate.gather(1, columns)
        if scaling != 1:
            picked = picked * scaling
        grad_soft = (soft * (picked - (picked * soft).sum(-1, keepdim=True))).to(x.dtype)
        if columns is None:
            grad_z[:, :width] = grad_soft
            grad_z[:, width:] = 0
        else:
            grad_z.zero_().scatter_(1, columns, grad_soft)
        if grad_logits is not None:
            grad_z += grad_logits

        if need_lora_b:
            grad_lora_b = grad_out.t().mm(gated)
            if scaling != 1:
                grad_lora_b.mul_(scaling)
        if need_w:
            grad_w = grad_out.t().mm(x)
        if need_b and has_bias:
            grad_b = grad_out.sum(0)
        if need_x:  # the base layer's part first, then the experts' and the router's
            grad_x = x.new_zeros(num_tokens, in_features) if weight is None else \
                grad_out.mm(weight)
        if fused_w.dim() == 3:  # per-sample routers: fused_w is (N, R + n, d_in)
            x3 = x.view(batch_size, -1, in_features)
            grad_hz3 = grad_hz.view(batch_size, -1, total_rank + num_logits)
            if need_a or need_router:
                grad_fused = torch.bmm(grad_hz3.transpose(1, 2), x3)
                if need_a:
                    grad_a = grad_fused[:, :total_rank].sum(0)
                grad_router = grad_fused[:, total_rank:]
            if need_x:
                grad_x.view(batch_size, -1, in_features).baddbmm_(grad_hz3, fused_w)
        else:
            if need_a or need_router:
                grad_fused = grad_hz.t().mm(x)
                grad_a, grad_router = grad_fused[:total_rank], grad_fused[total_rank:]
            if need_x:
                grad_x.addmm_(grad_hz, fused_w)
        return (grad_x, grad_w, grad_b, grad_a, grad_lora_b, grad_router, None, None, None,
                None, None, None)


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

    #: Callers pass ``(x, task)`` to modules carrying this flag.
    task_conditioned = True
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
