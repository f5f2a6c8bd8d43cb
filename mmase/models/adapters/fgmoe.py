"""FGMoE: fine-grained intra-task experts, shared experts and a global expert in an MLP.

Follows Xu, Ye and Su, 2025, "Multi-Task Dense Prediction Fine-Tuning with Mixture of
Fine-Grained Experts" (arXiv 2507.19077). Only its abstract is available to us; this is our
reading of it (the choices not stated there are marked *ours*):

- **Intra-task experts** partition the MLP along its hidden dimension: the ``H`` hidden units of
  ``fc2(act(fc1(x)))`` are cut into ``num_experts`` slices of ``H / num_experts`` units; slice
  ``i`` is the matching rows of ``fc1`` and columns of ``fc2`` (full slices of the pretrained
  weights, not LoRA factors). Each task owns its set of slices, initialised as a copy of the
  pretrained MLP, so the full set of one task reproduces the MLP
  (``task_specific_experts=False``, *ours*, shares one set between the tasks;
  ``task_specific_experts='shared_only'``, *ours*, shares the routed slices and keeps only each
  task's shared slices, besides its router, per task: the reading of the abstract's "fewer
  parameters" in which the per-task cost is the router and the always-on slices).
- **Shared experts**: the last ``num_shared`` slices are always on for every token of a task;
  the per-task router picks the ``top_k`` of the other ``R = num_experts - num_shared``
  ("routed") slices for each token.
- **Global expert**: the pretrained MLP itself, one for all tasks, mixed in by a gate computed
  from the token by the task's router: ``g = sigmoid(u_t . x)``.

For a token ``x`` of task ``t`` with router logits ``z = R_t x`` (``R`` routed logits, then the
global one):

    w_i = k * softmax(z_I)_i  for the selected routed slices i in I = top-k(z[:R]), else 0;
    w_i = 1                   for the shared slices;
    intra = sum_i w_i * fc2_t[:, S_i] act(fc1_t[S_i] x + b1_t[S_i]) + b2_t;
    y = (1 - g) * intra + g * fc2(act(fc1(x))).

*Ours*: the routed gates are scaled by ``k`` (mean 1 over the selected slices), so a router
with equal logits passes every selected slice at its pretrained scale (the full set then
reproduces the MLP exactly), and the global expert is mixed convexly, which keeps that identity.

Fast path: no loop over experts. The task's slices form one ``(H, d_in)`` / ``(d_out, H)`` pair
of weights; the slice gates are expanded to the hidden units and multiply the activations
(unselected slices get 0), so a forward is two GEMMs for the intra-task experts and two for the
global expert. This trades the sparse FLOP savings for GEMM efficiency: every slice is computed,
then masked. A batch mixing tasks (one index per sample) is sorted by task and each task's
samples run its two GEMMs (a loop over the tasks present). Measured on CPU (1 thread, 5 tasks x
2 samples, 16 slices, forward + backward), this beats gathering every sample's weights for
batched GEMMs at each size tried: 31 vs 48 ms (d=192, 17 tokens), 0.58 vs 0.84 s (d=384, 197
tokens), 2.9 vs 3.8 s (d=384, 1025 tokens; the plain MLP takes 2.0 s there).

Trainable: the intra-task slices and the routers; the global expert is the pretrained MLP and
is frozen (as an adapter's base layer). Its linears keep their names (``fc1``, ``fc2``), so a
backbone can unfreeze them by name. ``train_global_expert=True`` (*ours*) trains the global
expert too: for an MLP that is not pretrained, e.g. a block of the multi-task decoder
(:class:`~mmase.models.decoders.FGMoEDecoder`), where nothing pretrained is there to keep.

The module knows nothing of ViTs or task names: it sees a tensor and a task index.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from .moe_lora import check_int_arg
from .routers import RoutingBookkeeping, TaskIndex, TaskRouter, check_task_index, moe_gates
from .task_moe import check_mlp_linears, stack_mlp_copies


def check_fgmoe_args(hidden_features: int, num_experts: int, top_k: int, num_shared: int,
                     prefix: str = '') -> None:
    """Validate an FGMoE configuration; errors name the field as ``{prefix}{name}``.

    Args:
        hidden_features (int): ``H``, the MLP hidden size the slices partition.
        num_experts (int): Slices of the hidden dimension, shared ones included (>= 2 is
            useful; must divide ``H``).
        top_k (int): Routed slices per token, ``1 <= top_k <= num_experts - num_shared``.
        num_shared (int): Always-on slices, ``0 <= num_shared < num_experts``.
        prefix (str): Prepended to field names, e.g. ``'mlp_moe.'``.
    """
    check_int_arg('num_experts', num_experts, 1, prefix)
    check_int_arg('num_shared', num_shared, 0, prefix)
    check_int_arg('top_k', top_k, 1, prefix)
    if num_shared >= num_experts:
        raise ValueError(f'{prefix}num_shared={num_shared} leaves no routed slice: it must be '
                         f'smaller than {prefix}num_experts={num_experts}')
    routed = num_experts - num_shared
    if top_k > routed:
        raise ValueError(f'{prefix}top_k={top_k} exceeds the {routed} routed slices '
                         f'({prefix}num_experts={num_experts} - '
                         f'{prefix}num_shared={num_shared})')
    if hidden_features % num_experts:
        raise ValueError(f'{prefix}num_experts={num_experts} does not divide the MLP hidden '
                         f'size {hidden_features}')


@MODELS.register_module()
class FGMoE(RoutingBookkeeping, nn.Module):
    """An MLP turned into fine-grained task experts, shared slices and a global expert.

    Args:
        fc1 (nn.Linear): Pretrained first linear ``d_in -> H``; kept (frozen) as the global
            expert's ``fc1`` and copied into the intra-task slices.
        fc2 (nn.Linear): Pretrained second linear ``H -> d_out``; likewise.
        act (nn.Module, optional): Activation between them. Default: ``nn.GELU()``.
        num_tasks (int): Number of task indices ``T`` (one router each). Default: 1.
        num_experts (int): Slices the hidden dimension is cut into, shared slices included;
            must divide ``H``. (Unlike :class:`MoELoRALinear`, whose ``num_experts`` counts
            the sparse experts only, this counts every slice.) Default: 16.
        top_k (int): Routed slices selected per token. Default: 6.
        num_shared (int): Always-on (shared) slices among ``num_experts``. Default: 2.
        global_expert (bool): Mix in the pretrained MLP through the input-and-task gate. When
            False the output is the intra-task part alone and the pretrained linears are not
            kept. Default: True.
        task_specific_experts (bool | str): One set of slices per task (True), one set shared
            by all tasks, the routers staying per task (False), or ``'shared_only'``: the
            routed slices (and ``fc2``'s bias) shared by all tasks, the shared slices per task
            (``shared_fc1_weight`` ``(T, S H / num_experts, d_in)``, ``shared_fc1_bias``,
            ``shared_fc2_weight``). Default: True.
        train_global_expert (bool): Train the global expert's ``fc1``/``fc2`` (True; for an
            MLP that is not pretrained) or freeze them (False, the pretrained MLP). Needs
            ``global_expert=True``. Default: False.
        load_balance (bool): In training mode, accumulate the Switch load-balancing loss of the
            routed slices per task (:meth:`pop_load_balance`). Default: False.
        mutual_information (bool): In training mode, accumulate Mod-Squad's task-expert
            mutual information over the routed experts (:meth:`pop_mutual_information`).
            Default: False.
        record_routing (bool): Record routing statistics (:meth:`routing_stats`: ``counts``
            ``(T, R)`` selections of the routed slices, ``tokens``, and with a global expert
            ``global_mass``, the mean global gate ``g``). Default: False.

    Shapes:
        - ``x``: ``(N, *, d_in)``; ``task``: int or LongTensor ``(N,)``.
        - output: ``(N, *, d_out)``.
    """

    #: Parameters holding expert weights (for parameter budgets; the frozen global expert and
    #: the router are not among them).
    expert_parameter_names = ('expert_fc1_weight', 'expert_fc1_bias', 'expert_fc2_weight',
                              'expert_fc2_bias', 'shared_fc1_weight', 'shared_fc1_bias',
                              'shared_fc2_weight')
    #: Values of ``task_specific_experts``.
    EXPERT_SHARING = (True, False, 'shared_only')

    #: Configuration keys (besides the MLP, ``num_tasks`` and the bookkeeping flags) and
    #: their defaults, as the backbone's ``mlp_moe`` dict takes them.
    CONFIG_DEFAULTS = dict(num_experts=16, top_k=6, num_shared=2, global_expert=True,
                           task_specific_experts=True, train_global_expert=False)

    def __init__(self, fc1: nn.Linear, fc2: nn.Linear, act: Optional[nn.Module] = None,
                 num_tasks: int = 1, num_experts: int = 16, top_k: int = 6, num_shared: int = 2,
                 global_expert: bool = True, task_specific_experts: bool = True,
                 train_global_expert: bool = False, load_balance: bool = False,
                 mutual_information: bool = False, record_routing: bool = False):
        super().__init__()
        check_mlp_linears(fc1, fc2, 'FGMoE')
        self.check_config(fc1.out_features, num_experts=num_experts, top_k=top_k,
                          num_shared=num_shared, global_expert=global_expert,
                          task_specific_experts=task_specific_experts,
                          train_global_expert=train_global_expert)
        check_int_arg('num_tasks', num_tasks, 1)
        self.in_features = fc1.in_features
        self.hidden_features = fc1.out_features
        self.out_features = fc2.out_features
        self.num_tasks = num_tasks
        self.num_experts = num_experts
        self.num_shared = num_shared
        self.num_routed = num_experts - num_shared
        self.top_k = top_k
        self.slice_size = self.hidden_features // num_experts
        self.global_expert = global_expert
        self.task_specific_experts = task_specific_experts
        self.train_global_expert = train_global_expert
        self.load_balance = load_balance
        self.mutual_information = mutual_information
        self.record_routing = record_routing

        # Slice i = hidden units [i * slice_size, (i + 1) * slice_size): routed slices first,
        # then the shared ones. Leading dimension: task (or 1 when shared by all tasks).
        copies = num_tasks if task_specific_experts is True else 1
        (self.expert_fc1_weight, self.expert_fc1_bias, self.expert_fc2_weight,
         self.expert_fc2_bias) = stack_mlp_copies(fc1, fc2, copies)
        if task_specific_experts == 'shared_only':  # the shared slices move to per-task copies
            cut = self.num_routed * self.slice_size
            w1, b1, w2 = (p.detach() for p in (self.expert_fc1_weight, self.expert_fc1_bias,
                                               self.expert_fc2_weight))
            per_task = [w1[:, cut:], b1[:, cut:], w2[:, :, cut:]]
            self.shared_fc1_weight, self.shared_fc1_bias, self.shared_fc2_weight = (
                nn.Parameter(p.repeat(num_tasks, *([1] * (p.dim() - 1)))) for p in per_task)
            self.expert_fc1_weight = nn.Parameter(w1[:, :cut].clone())
            self.expert_fc1_bias = nn.Parameter(b1[:, :cut].clone())
            self.expert_fc2_weight = nn.Parameter(w2[:, :, :cut].clone())
        self.act = nn.GELU() if act is None else act
        if global_expert:  # the MLP, shared by all tasks; frozen when pretrained
            self.fc1, self.fc2 = fc1, fc2
            for param in (*fc1.parameters(), *fc2.parameters()):
                param.requires_grad_(train_global_expert)
        factory = dict(device=fc1.weight.device, dtype=fc1.weight.dtype)
        self.router = TaskRouter(self.in_features, self.num_routed + int(global_expert),
                                 num_tasks).to(**factory)
        self._init_bookkeeping()

    @classmethod
    def check_config(cls, hidden_features: int, prefix: str = '', **cfg) -> None:
        """Validate the :attr:`CONFIG_DEFAULTS` keys in ``cfg`` (all must be given, but
        ``train_global_expert``, False when missing)."""
        check_fgmoe_args(hidden_features, cfg['num_experts'], cfg['top_k'], cfg['num_shared'],
                         prefix)
        cfg = dict(dict(train_global_expert=False), **cfg)
        sharing = cfg['task_specific_experts']
        if not any(sharing is v or (isinstance(v, str) and sharing == v)
                   for v in cls.EXPERT_SHARING):
            raise ValueError(f'{prefix}task_specific_experts={sharing!r} is not one of '
                             f'{cls.EXPERT_SHARING}')
        for name in ('global_expert', 'train_global_expert'):
            if not isinstance(cfg[name], bool):
                raise TypeError(f'{prefix}{name} must be True or False, got {cfg[name]!r}')
        if cfg['train_global_expert'] and not cfg['global_expert']:
            raise ValueError(f'{prefix}train_global_expert=True needs a global expert to '
                             f'train, but {prefix}global_expert=False')

    @property
    def per_task_parameter_names(self) -> tuple:
        """Parameters whose first dimension is the task (besides the router): task addition
        copies their rows by task name."""
        if self.task_specific_experts == 'shared_only':
            return ('shared_fc1_weight', 'shared_fc1_bias', 'shared_fc2_weight')
        return self.expert_parameter_names[:4] if self.task_specific_experts else ()

    def _weights(self, index: int) -> Tuple[torch.Tensor, ...]:
        """``fc1`` ``(H, d_in)``, its bias, ``fc2`` ``(d_out, H)`` and its bias of expert set
        ``index`` (the task, or 0 when the slices are shared)."""
        if self.task_specific_experts != 'shared_only':
            return (self.expert_fc1_weight[index], self.expert_fc1_bias[index],
                    self.expert_fc2_weight[index], self.expert_fc2_bias[index])
        return (torch.cat([self.expert_fc1_weight[0], self.shared_fc1_weight[index]]),
                torch.cat([self.expert_fc1_bias[0], self.shared_fc1_bias[index]]),
                torch.cat([self.expert_fc2_weight[0], self.shared_fc2_weight[index]], 1),
                self.expert_fc2_bias[0])

    # ----------------------------------------------------------------------------------------
    def _slices(self, x: torch.Tensor, gates: torch.Tensor, index: int) -> torch.Tensor:
        """Gated slices of expert set ``index``: ``x (..., d_in)``, ``gates (...,
        num_experts)`` -> ``(..., d_out)``."""
        fc1_weight, fc1_bias, fc2_weight, fc2_bias = self._weights(index)
        hidden = self.act(F.linear(x, fc1_weight, fc1_bias))
        hidden = hidden.unflatten(-1, (self.num_experts, self.slice_size)) * gates.to(
            hidden.dtype).unsqueeze(-1)
        return F.linear(hidden.flatten(-2), fc2_weight, fc2_bias)

    def _intra(self, x: torch.Tensor, gates: torch.Tensor, index: TaskIndex) -> torch.Tensor:
        """The intra-task experts on ``x (N, L, d_in)`` with ``gates (N, L, num_experts)``;
        a per-sample ``index`` groups the samples by task."""
        if isinstance(index, int):
            return self._slices(x, gates, index)
        order = torch.argsort(index, stable=True)
        sizes = torch.bincount(index, minlength=self.num_tasks).tolist()
        chunks = zip(x.index_select(0, order).split(sizes),
                     gates.index_select(0, order).split(sizes))
        outs = [self._slices(xs, gs, t) for t, (xs, gs) in enumerate(chunks) if sizes[t]]
        return torch.cat(outs).index_select(0, torch.argsort(order))

    def slice_gates(self, logits: torch.Tensor
                    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Gates of the ``num_experts`` slices from router logits.

        Args:
            logits (Tensor): ``(M, R [+ 1])`` router logits (at least float32).

        Returns:
            tuple: ``gates`` ``(M, num_experts)``: ``k * softmax`` over the selected routed
            slices (0 for the others), then 1 for every shared slice; and ``top_idx``
            ``(M, k)`` (None when every routed slice is selected).
        """
        routed, top_idx = moe_gates(logits[:, :self.num_routed], self.num_routed, self.top_k,
                                    'none')
        gates = torch.cat([routed * self.top_k,
                           routed.new_ones(routed.shape[0], self.num_shared)], -1)
        return gates, top_idx

    def forward(self, x: torch.Tensor, task: TaskIndex) -> torch.Tensor:
        check_task_index(task, self.num_tasks, x.shape[0])
        n = x.shape[0]
        lead_shape = x.shape[:-1]
        x3 = x.reshape(n, -1, self.in_features)
        logits = self.router(x3, task).reshape(-1, self.router.num_logits)
        scores = logits.to(torch.promote_types(logits.dtype, torch.float32))
        gates, top_idx = self.slice_gates(scores)

        index = task if self.task_specific_experts else 0  # 'shared_only': per task too
        out = self._intra(x3, gates.view(n, -1, self.num_experts), index)
        masses = {}
        if self.global_expert:
            glob = torch.sigmoid(scores[:, self.num_routed])
            global_out = self.fc2(self.act(self.fc1(x3)))
            out = out + glob.to(out.dtype).view(n, -1, 1) * (global_out - out)
            masses['global_mass'] = glob

        self._after_routing(logits, top_idx, self.num_routed, self.num_routed, task, n,
                            **masses)
        return out.reshape(*lead_shape, self.out_features)

    def extra_repr(self) -> str:
        return (f'in_features={self.in_features}, hidden_features={self.hidden_features}, '
                f'out_features={self.out_features}, num_tasks={self.num_tasks}, '
                f'num_experts={self.num_experts} (slices of {self.slice_size}), '
                f'top_k={self.top_k}, num_shared={self.num_shared}, '
                f'global_expert={self.global_expert}, '
                f'task_specific_experts={self.task_specific_experts}, '
                f'train_global_expert={self.train_global_expert}')
