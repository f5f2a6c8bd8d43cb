"""LoRA mixture-of-experts around a frozen linear layer, with adaptive shared experts (ASE).

Implements Li et al., 2025, "Adaptive Shared Experts with LoRA-Based Mixture of Experts for
Multi-Task Learning" (arXiv 2510.00570), Sec. 3: for a token ``x`` of task ``t`` at a frozen
linear ``W0``, the task router gives logits ``z = R_t x`` over ``E`` sparse and ``S`` shared
LoRA experts of rank ``r``; the top-``k`` sparse experts and all shared experts are combined:

    y = W0 x + (alpha / r) * sum_{i in I ∪ shared} g_i B_i A_i x.

Gating modes (``shared_gating``):
    - ``'adaptive'`` (ASE): ``g`` is one softmax over the ``k`` selected sparse logits and the
      ``S`` shared logits jointly, so the router decides how much the shared experts count.
    - ``'fixed'``: softmax over the ``k`` selected sparse logits; every shared expert has weight 1
      (the usual "shared expert" of DeepSeekMoE-style models).
    - ``'none'``: no shared experts (``S`` must be 0); softmax over the selected sparse logits.

Fast path: the ``A`` matrices of all experts form one ``((E+S) r, d_in)`` weight and the ``B``
matrices one ``(d_out, (E+S) r)`` weight, so every token costs two skinny matmuls whatever the
number of experts; the gates become a per-token scale on each expert's block of ``r`` ranks:
``y = W0 x + ((x A^T) * expand_r(scaling * g)) B^T`` with ``g`` zero outside the selected
experts. The router joins the ``A`` matmul, the adapter output is accumulated into the base
output, and a hand-written backward skips autograd's intermediate copies. No per-expert Python
loop, no per-expert tensors.

The module knows nothing of ViTs or task names: it sees a tensor and a task index (an int for
the whole batch, or a LongTensor ``(N,)`` with one index per sample).
"""
import contextlib
import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .routers import RoutingBookkeeping, TaskIndex, TaskRouter, check_task_index

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


def check_moe_lora_args(num_experts: int, top_k: int, num_shared: int, rank: int,
                        shared_gating: str, alpha: Optional[float] = None,
                        prefix: str = '') -> None:
    """Validate the expert configuration; errors name the field as ``{prefix}{name}``.

    Args:
        num_experts (int): ``E``, sparse experts (>= 1).
        top_k (int): ``k``, sparse experts selected per token (1 <= k <= E).
        num_shared (int): ``S``, shared experts (>= 0; 0 when ``shared_gating='none'``).
        rank (int): ``r``, rank of every expert (>= 1).
        shared_gating (str): One of ``'adaptive'``, ``'fixed'``, ``'none'``.
        alpha (float, optional): LoRA scale numerator (> 0) or None.
        prefix (str): Prepended to field names in messages, e.g. ``'adapter.'``.
    """
    for name, value, low in (('num_experts', num_experts, 1), ('top_k', top_k, 1),
                             ('num_shared', num_shared, 0), ('rank', rank, 1)):
        check_int_arg(name, value, low, prefix)
    if top_k > num_experts:
        raise ValueError(f'{prefix}top_k={top_k} exceeds {prefix}num_experts={num_experts}')
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


def _select_and_softmax(logits: torch.Tensor, num_experts: int, top_k: int, shared_gating: str
                       ) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor,
                                  Optional[torch.Tensor]]:
    """Gates from router logits, computed on the selected columns only (see :func:`moe_gates`).

    Differentiable under autograd; :class:`_MoELoRAFunction` calls it without autograd and
    backpropagates through ``soft`` by hand.

    Args:
        logits (Tensor): ``(M, n)`` router logits, ``n = E + S``, sparse experts first.
        num_experts (int): ``E``.
        top_k (int): ``k``.
        shared_gating (str): ``'adaptive'`` | ``'fixed'`` | ``'none'``.

    Returns:
        tuple: ``soft`` ``(M, w)``, the softmax over the selected logits (``w = k + S`` for
        'adaptive', ``k`` otherwise); ``columns`` ``(M, w)``, the logit column of each entry of
        ``soft`` (None when ``k == E``: then ``soft`` covers columns ``0..w-1`` in order); the
        dense ``gates`` ``(M, n)`` (zero for unselected sparse experts, 1 for 'fixed' shared
        experts); ``top_idx`` ``(M, k)``, the selected sparse experts (None when ``k == E``).
    """
    num_tokens, num_logits = logits.shape
    num_shared = num_logits - num_experts
    if top_k < num_experts:
        top_val, top_idx = logits[:, :num_experts].topk(top_k, dim=-1, sorted=False)
    else:
        top_val, top_idx = logits[:, :num_experts], None
    columns = top_idx
    if shared_gating == 'adaptive' and num_shared:
        soft = torch.softmax(torch.cat([top_val, logits[:, num_experts:]], -1), -1)
        if top_idx is not None:
            shared_cols = torch.arange(num_experts, num_logits, device=logits.device)
            columns = torch.cat([top_idx, shared_cols.expand(num_tokens, num_shared)], -1)
    else:
        soft = torch.softmax(top_val, -1)
    if columns is None:
        gates = soft if soft.shape[1] == num_logits else torch.cat(
            [soft, soft.new_ones(num_tokens, num_shared)], -1)
    else:
        gates = soft.new_zeros(num_tokens, num_logits).scatter_(1, columns, soft)
        if shared_gating == 'fixed' and num_shared:
            gates[:, num_experts:] = 1.0
    return soft, columns, gates, top_idx


def moe_gates(logits: torch.Tensor, num_experts: int, top_k: int,
              shared_gating: str) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Turn router logits into a dense gate matrix over all experts (differentiable).

    Args:
        logits (Tensor): ``(M, E + S)`` router logits, sparse experts first.
        num_experts (int): ``E``.
        top_k (int): ``k``.
        shared_gating (str): ``'adaptive'`` | ``'fixed'`` | ``'none'``.

    Returns:
        tuple: ``gates`` ``(M, E + S)`` (zero for unselected sparse experts) and the selected
        sparse expert ids ``(M, k)`` (None when ``k == E``: every sparse expert is selected).
    """
    _, _, gates, top_idx = _select_and_softmax(logits, num_experts, top_k, shared_gating)
    return gates, top_idx


class _MoELoRAFunction(torch.autograd.Function):
    """Fused forward/backward of a routed LoRA mixture around a frozen linear.

    Forward (``M`` tokens, ``R = (E+S) r`` ranks, ``n = E + S``, ``s = alpha / r``)::

        [h | z] = x [A; R_t]^T          one GEMM for all experts' A and the router
        g       = gates(z)              top-k + softmax over the selected columns, (M, n)
        y       = x W^T + b + s (h * expand_r(g)) B^T    accumulated into one output

    Backward computes only the gradients autograd asks for, writes the rank and router
    gradients into one ``(M, R + n)`` buffer (so the A and router weights share one GEMM each
    way), accumulates ``dx`` in place and never materialises per-expert tensors. With
    per-sample routers (``router_w`` of shape ``(N, n, d_in)``) each sample's ``[A; R]`` is
    stacked into ``(N, R + n, d_in)`` and the GEMMs become batched matmuls over the samples.

    Inputs: ``x`` (M, d_in) contiguous, ``weight`` (d_out, d_in), ``bias`` (d_out,) or None,
    ``lora_A`` (R, d_in), ``lora_B`` (d_out, R), ``router_w`` (n, d_in) or (N, n, d_in).
    Outputs: ``y`` (M, d_out); ``logits`` (M, n) (differentiable, for auxiliary losses);
    ``gates`` (M, n) (at least float32) and ``top_idx`` (M, k) (empty when k == E), both not
    differentiable.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, lora_A, lora_B, router_w, num_experts, top_k, rank,
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
        soft, columns, gates, top_idx = _select_and_softmax(logits.to(gate_dtype), num_experts,
                                                           top_k, shared_gating)
        gates_x = gates.to(x.dtype)
        gated = (hidden.view(num_tokens, num_logits, rank) * gates_x.unsqueeze(-1)).view(
            num_tokens, total_rank)
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

        if grad_out is None:  # only an auxiliary loss on the logits was backpropagated
            grad_out = x.new_zeros(num_tokens, weight.shape[0])
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
        if fused_w.dim() == 3:  # per-sample routers: fused_w is (N, R + n, d_in)
            x3 = x.view(batch_size, -1, in_features)
            grad_hz3 = grad_hz.view(batch_size, -1, total_rank + num_logits)
            if need_a or need_router:
                grad_fused = torch.bmm(grad_hz3.transpose(1, 2), x3)
                if need_a:
                    grad_a = grad_fused[:, :total_rank].sum(0)
                grad_router = grad_fused[:, total_rank:]
            if need_x:
                grad_x = grad_out.mm(weight)
                grad_x.view(batch_size, -1, in_features).baddbmm_(grad_hz3, fused_w)
        else:
            if need_a or need_router:
                grad_fused = grad_hz.t().mm(x)
                grad_a, grad_router = grad_fused[:total_rank], grad_fused[total_rank:]
            if need_x:
                grad_x = grad_out.mm(weight)
                grad_x.addmm_(grad_hz, fused_w)
        return (grad_x, grad_w, grad_b, grad_a, grad_lora_b, grad_router, None, None, None,
                None, None, None)


class MoELoRALinear(RoutingBookkeeping, nn.Module):
    """A frozen linear layer plus a task-routed mixture of LoRA experts (ASE, Sec. 3).

    The wrapped layer is kept as ``base_layer`` and frozen; the adapter adds
    ``(alpha / r) * sum_i g_i B_i A_i x`` on top. ``A`` is kaiming-uniform initialised and ``B``
    is zero, so a fresh adapter leaves the layer's output unchanged. Plain LoRA is the special
    case ``num_experts=1, top_k=1, num_shared=0`` (see
    :func:`~mmase.models.adapters.lora.LoRALinear`).
    When the gates cannot depend on the token (one sparse expert and no adaptively gated shared
    expert) no router is built and the gates are the constant 1.

    Args:
        base_layer (nn.Linear): The layer to adapt; frozen in place, not copied.
        num_tasks (int): Number of task routers ``T``. Default: 1.
        num_experts (int): Sparse experts ``E``. Default: 1.
        top_k (int): Sparse experts selected per token ``k``. Default: 1.
        num_shared (int): Shared experts ``S``. Default: 0.
        rank (int): Rank ``r`` of each expert. Default: 4.
        alpha (float, optional): Scale numerator; output scale is ``alpha / rank``.
            None means ``alpha = rank`` (scale 1). Default: None.
        shared_gating (str): ``'adaptive'`` | ``'fixed'`` | ``'none'``. Default: ``'adaptive'``.
        load_balance (bool): In training mode, compute the load-balancing loss of every forward
            (see :func:`~mmase.models.adapters.routers.load_balance_loss`); fetch it with
            :meth:`pop_load_balance`. Default: False.
        record_routing (bool): Accumulate routing statistics (see :meth:`routing_stats`).
            Default: False.

    Shapes:
        - ``x``: ``(N, *, d_in)``; ``task``: int or LongTensor ``(N,)``.
        - output: ``(N, *, d_out)``.
    """

    #: Callers pass ``(x, task)`` to modules carrying this flag.
    task_conditioned = True
    #: Parameters holding expert weights (for parameter budgets; routers are separate).
    expert_parameter_names = ('lora_A', 'lora_B')

    def __init__(self, base_layer: nn.Linear, num_tasks: int = 1, num_experts: int = 1,
                 top_k: int = 1, num_shared: int = 0, rank: int = 4,
                 alpha: Optional[float] = None, shared_gating: str = 'adaptive',
                 load_balance: bool = False, record_routing: bool = False):
        super().__init__()
        if not isinstance(base_layer, nn.Linear):
            raise TypeError(f'MoELoRALinear wraps an nn.Linear, got {type(base_layer).__name__}')
        check_moe_lora_args(num_experts, top_k, num_shared, rank, shared_gating, alpha)
        if not _is_int(num_tasks) or num_tasks < 1:
            raise ValueError(f'num_tasks={num_tasks!r} must be an int >= 1')
        self.base_layer = base_layer
        for param in self.base_layer.parameters():
            param.requires_grad_(False)
        self.in_features = base_layer.in_features
        self.out_features = base_layer.out_features
        self.num_tasks = num_tasks
        self.num_experts = num_experts
        self.top_k = top_k
        self.num_shared = num_shared
        self.rank = rank
        self.alpha = float(rank if alpha is None else alpha)
        self.scaling = self.alpha / rank
        self.shared_gating = shared_gating
        self.load_balance = load_balance
        self.record_routing = record_routing

        total = (num_experts + num_shared) * rank
        factory = dict(device=base_layer.weight.device, dtype=base_layer.weight.dtype)
        # Expert e owns rows [e*r, (e+1)*r) of lora_A and the same columns of lora_B.
        self.lora_A = nn.Parameter(torch.empty(total, self.in_features, **factory))
        self.lora_B = nn.Parameter(torch.empty(self.out_features, total, **factory))
        constant_gates = num_experts == 1 and (num_shared == 0 or shared_gating == 'fixed')
        self.router = None if constant_gates else TaskRouter(
            self.in_features, num_experts + num_shared, num_tasks).to(**factory)
        self.reset_parameters()

        self._init_bookkeeping()

    def reset_parameters(self) -> None:
        """A: kaiming-uniform (as ``nn.Linear``, per expert fan-in d_in); B: zeros."""
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)
        if self.router is not None:
            self.router.reset_parameters()

    @property
    def num_total_experts(self) -> int:
        return self.num_experts + self.num_shared

    def forward(self, x: torch.Tensor, task: TaskIndex) -> torch.Tensor:
        check_task_index(task, self.num_tasks, x.shape[0])
        if self.router is None:  # constant gates (all 1): plain LoRA over all ranks
            if self.record_routing:
                num_tokens = x.numel() // self.in_features
                self._record(x.new_ones(num_tokens, self.num_total_experts), None, task,
                             x.shape[0])
            hidden = F.linear(x, self.lora_A) * self.scaling
            return self.base_layer(x) + F.linear(hidden, self.lora_B)

        lead_shape = x.shape[:-1]
        if isinstance(task, int):
            router_w = self.router.weight[task]
        else:
            router_w = self.router.weight.index_select(0, task)
        tensors = [x.reshape(-1, self.in_features).contiguous(), self.base_layer.weight,
                   self.base_layer.bias, self.lora_A, self.lora_B, router_w]
        device_type = x.device.type
        autocast = torch.is_autocast_enabled(device_type)
        if autocast:  # run the fused function in the autocast dtype, with autocast off inside
            dtype = torch.get_autocast_dtype(device_type)
            tensors = [t if t is None else t.to(dtype) for t in tensors]
        with torch.autocast(device_type, enabled=False) if autocast else contextlib.nullcontext():
            out, logits, gates, top_idx = _MoELoRAFunction.apply(
                *tensors, self.num_experts, self.top_k, self.rank, self.scaling,
                self.shared_gating, x.shape[0])
        if top_idx.shape[1] == 0:
            top_idx = None
        if self.training and self.load_balance:
            self._add_load_balance(logits, top_idx, self.num_experts, task, x.shape[0])
        if self.record_routing:
            self._record(gates, top_idx, task, x.shape[0])
        return out.view(*lead_shape, self.out_features)

    # ----------------------------------------------------------------------------------------
    # load balancing and routing statistics (see RoutingBookkeeping)
    def _record(self, gates: torch.Tensor, top_idx: Optional[torch.Tensor], task: TaskIndex,
                batch_size: int) -> None:
        """Record selections and the sparse / shared gate mass of ``gates`` ``(M, E + S)``."""
        self._record_routing(top_idx, self.num_experts, task, batch_size, gates.shape[0],
                             gates.device, sparse_mass=gates[:, :self.num_experts].sum(-1),
                             shared_mass=gates[:, self.num_experts:].sum(-1))

    def routing_stats(self) -> Optional[Dict[str, torch.Tensor]]:
        """Routing statistics recorded while ``record_routing`` was on, or None.

        Returns:
            dict: ``counts`` ``(T, E)`` times each sparse expert was selected, ``tokens`` ``(T,)``
            tokens routed, ``sparse_mass`` / ``shared_mass`` ``(T,)`` mean total gate weight of
            the sparse / shared experts per token (all float64, on the layer's device). Without
            a router (constant gates) every expert counts as selected with its constant gate.
        """
        return super().routing_stats()

    def extra_repr(self) -> str:
        return (f'in_features={self.in_features}, out_features={self.out_features}, '
                f'num_tasks={self.num_tasks}, num_experts={self.num_experts}, '
                f'top_k={self.top_k}, num_shared={self.num_shared}, rank={self.rank}, '
                f'alpha={self.alpha:g}, shared_gating={self.shared_gating!r}')
