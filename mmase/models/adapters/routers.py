"""The routing core shared by every routed layer: task routers, gates, auxiliary losses, statistics.

ASE (Li et al., 2025, "Adaptive Shared Experts with LoRA-Based Mixture of Experts for
Multi-Task Learning", Sec. 3) gives every task its own router: a bias-free linear map from a
token to one logit per expert (sparse experts first, then shared experts). The routers of all
tasks are stored as one ``(T, num_logits, in_features)`` tensor so that a batch mixing tasks
(one task index per sample) is routed with a single batched matmul.

Every routed layer of the family (LoRA experts beside an FFN or a linear, FGMoE slices,
Task-MoE FFN experts) goes through the same chain, implemented once here:

1. :class:`TaskRouter`: task-router logits;
2. :func:`select_gates` / :func:`moe_gates`: top-k over the sparse pool, then one softmax over
   the selected logits (``'none'``), jointly with the shared ones (``'adaptive'``, ASE), or
   with the shared experts at weight 1 (``'fixed'``);
3. :meth:`RoutingBookkeeping._after_routing`: the auxiliary losses (Switch load balancing,
   :func:`load_balance_loss`; Mod-Squad's task-expert mutual information,
   :func:`task_expert_mutual_information`) and the routing statistics, per task.

The layers differ only in their experts.
"""
import math
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from .gates import _gate_dtype, moe_gates, select_gates  # noqa: F401  (the core's names)
from .router_losses import load_balance_loss, task_expert_mutual_information

TaskIndex = Union[int, torch.Tensor]


def check_task_index(task: TaskIndex, num_tasks: int, batch_size: int) -> None:
    """Validate a task index for a batch of ``batch_size`` samples.

    Args:
        task (int | Tensor): An int in ``[0, num_tasks)`` for the whole batch, or an integer
            tensor of shape ``(N,)`` with one task index per sample. Tensor values are not
            range-checked here (that would synchronise GPU streams); the backbone builds them.
        num_tasks (int): Number of tasks the router knows.
        batch_size (int): ``N``, the leading dimension of the input.
    """
    if isinstance(task, torch.Tensor):
        if task.dim() != 1 or task.dtype not in (torch.int64, torch.int32):
            raise ValueError(f'per-sample task index must be an int64 tensor of shape (N,), '
                             f'got dtype {task.dtype} and shape {tuple(task.shape)}')
        if task.shape[0] != batch_size:
            raise ValueError(f'per-sample task index has {task.shape[0]} entries for a batch '
                             f'of {batch_size} samples')
    elif isinstance(task, int) and not isinstance(task, bool):
        if not 0 <= task < num_tasks:
            raise IndexError(f'task index {task} out of range for {num_tasks} task(s)')
    else:
        raise TypeError(f'task index must be an int or a LongTensor (N,), got {type(task)}')


class TaskRouter(nn.Module):
    """One bias-free linear router per task.

    Args:
        in_features (int): Token dimension ``d_in``.
        num_logits (int): Logits per token (``E + S``: sparse experts, then shared experts).
        num_tasks (int): Number of task-specific routers ``T``. Default: 1.

    Shapes:
        - ``x``: ``(N, *, d_in)``.
        - ``task``: int or LongTensor ``(N,)``.
        - output: ``(N, *, num_logits)`` logits.

    The weight is initialised like ``nn.Linear`` (uniform in ``±1/sqrt(d_in)``), not at zero:
    equal logits would make top-k selection a tie broken by expert order.
    """

    def __init__(self, in_features: int, num_logits: int, num_tasks: int = 1):
        super().__init__()
        if num_tasks < 1:
            raise ValueError(f'num_tasks must be >= 1, got {num_tasks}')
        self.in_features = in_features
        self.num_logits = num_logits
        self.num_tasks = num_tasks
        self.weight = nn.Parameter(torch.empty(num_tasks, num_logits, in_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor, task: TaskIndex) -> torch.Tensor:
        check_task_index(task, self.num_tasks, x.shape[0])
        if isinstance(task, int):
            return F.linear(x, self.weight[task])
        # Per-sample routers: gather each sample's router weight (N, n, d) and run one bmm.
        # Measured (CPU, 1 thread, T=5 tasks x 2 images x 1024 tokens, d=384, fwd+bwd):
        # 18 ms (n=17) / 35 ms (n=68), against 48 / 142 ms for computing all T routers' logits
        # and gathering, and 62 / 56 ms for one linear per task on its slice of the batch.
        n = x.shape[0]
        weight = self.weight.index_select(0, task)
        out = torch.bmm(x.reshape(n, -1, self.in_features), weight.transpose(1, 2))
        return out.reshape(*x.shape[:-1], self.num_logits)

    def extra_repr(self) -> str:
        return (f'in_features={self.in_features}, num_logits={self.num_logits}, '
                f'num_tasks={self.num_tasks}')


class RoutingBookkeeping:
    """Mixin of routed layers: the tail of the routing chain (auxiliary losses, statistics).

    The host module sets ``num_tasks`` (int), ``load_balance`` (bool), ``mutual_information``
    (bool) and ``record_routing`` (bool), calls :meth:`_init_bookkeeping` in ``__init__`` and,
    in ``forward``, :meth:`_after_routing` once with its logits, gates and selections. Callers
    read :meth:`pop_load_balance`, :meth:`pop_mutual_information` and :meth:`routing_stats`.
    A task index is an int for the whole batch or a LongTensor ``(N,)`` per sample; tokens are
    flattened ``(M, ...)`` with ``M = N * tokens_per_sample``.
    """

    #: Default of the host flag: no mutual-information accumulation.
    mutual_information = False

    def _init_bookkeeping(self) -> None:
        self._lb_sum: Optional[torch.Tensor] = None  # (T,) summed losses (with grad)
        self._lb_count: Optional[torch.Tensor] = None  # (T,) forwards that contributed
        self._mi_sum: Optional[torch.Tensor] = None  # (T, E) summed routing probabilities
        self._mi_tokens: Optional[torch.Tensor] = None  # (T,) tokens behind _mi_sum
        self._stats: Optional[Dict[str, torch.Tensor]] = None

    @staticmethod
    def _token_groups(task: TaskIndex, batch_size: int,
                      num_tokens: int) -> Optional[torch.Tensor]:
        """``(M,)`` task index of every flattened token, or None for one int task."""
        if isinstance(task, int):
            return None
        return task.repeat_interleave(num_tokens // batch_size)

    @classmethod
    def _dense_token_groups(cls, task: TaskIndex, batch_size: int, num_tokens: int,
                            device: torch.device) -> torch.Tensor:
        """``(M,)`` task index of every flattened token, also for one int task."""
        group = cls._token_groups(task, batch_size, num_tokens)
        if group is None:
            group = torch.full((num_tokens, ), task, dtype=torch.long, device=device)
        return group

    def _after_routing(self, logits: torch.Tensor, top_idx: Optional[torch.Tensor],
                       num_sparse: int, num_gated: int, task: TaskIndex, batch_size: int,
                       **masses: torch.Tensor) -> None:
        """The shared tail of every routed forward: auxiliary losses, then statistics.

        Args:
            logits (Tensor): ``(M, >= num_gated)`` router logits (differentiable).
            top_idx (Tensor | None): ``(M, k)`` selected sparse experts (None: all selected).
            num_sparse (int): Size of the sparse pool (load balancing and selection counts).
            num_gated (int): Leading logit columns whose softmax is the routing distribution
                of the mutual-information loss (ASE 'adaptive': sparse and shared experts;
                otherwise the sparse pool).
            task (int | Tensor): The forward's task index.
            batch_size (int): ``N``.
            **masses (Tensor): ``name -> (M,)`` per-token values for the statistics.
        """
        if self.training and self.load_balance:
            self._add_load_balance(logits, top_idx, num_sparse, task, batch_size)
        if self.training and self.mutual_information:
            self._add_mutual_information(logits[:, :num_gated], task, batch_size)
        if self.record_routing:
            self._record_routing(top_idx, num_sparse, task, batch_size, logits.shape[0],
                                 logits.device, **masses)

    # ----------------------------------------------------------------------------------------
    # load balancing
    def _add_load_balance(self, logits: torch.Tensor, top_idx: Optional[torch.Tensor],
                          num_experts: int, task: TaskIndex, batch_size: int) -> None:
        """Accumulate :func:`load_balance_loss` of ``logits`` ``(M, >= E)`` per task."""
        group = self._token_groups(task, batch_size, logits.shape[0])
        loss = load_balance_loss(logits, top_idx, num_experts, group, self.num_tasks)
        if group is None:
            count = logits.new_zeros(self.num_tasks, dtype=torch.float32)
            count[task] = 1.0
            loss_vec = count * loss
        else:
            count = (torch.bincount(task, minlength=self.num_tasks) > 0).float()
            loss_vec = loss
        if self._lb_sum is None:
            self._lb_sum, self._lb_count = loss_vec, count
        else:
            self._lb_sum = self._lb_sum + loss_vec
            self._lb_count = self._lb_count + count

    def pop_load_balance(self) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """Return and clear ``(loss_sum (T,), count (T,))`` accumulated since the last call.

        ``loss_sum[t] / count[t]`` is the mean load-balancing loss of task ``t`` over the
        forwards that saw it; None when nothing was recorded.
        """
        if self._lb_sum is None:
            return None
        result = (self._lb_sum, self._lb_count)
        self._lb_sum = self._lb_count = None
        return result

    # ----------------------------------------------------------------------------------------
    # mutual information between tasks and experts
    def _add_mutual_information(self, logits: torch.Tensor, task: TaskIndex,
                                batch_size: int) -> None:
        """Accumulate each task's summed routing probabilities ``softmax(logits)`` ``(M, E)``."""
        probs = torch.softmax(logits.to(_gate_dtype(logits)), -1)
        group = self._dense_token_groups(task, batch_size, logits.shape[0], logits.device)
        prob_sum = probs.new_zeros(self.num_tasks, probs.shape[1]).index_add(0, group, probs)
        tokens = torch.bincount(group, minlength=self.num_tasks).to(probs.dtype)
        if self._mi_sum is None:
            self._mi_sum, self._mi_tokens = prob_sum, tokens
        else:
            self._mi_sum = self._mi_sum + prob_sum
            self._mi_tokens = self._mi_tokens + tokens

    def pop_mutual_information(self) -> Optional[torch.Tensor]:
        """Return and clear ``I(T; E)`` of the tokens routed since the last call, or None.

        All tasks' tokens since the last call (one batched forward, or one forward per task)
        form the estimate (:func:`task_expert_mutual_information`); differentiable.
        """
        if self._mi_sum is None:
            return None
        info = task_expert_mutual_information(self._mi_sum, self._mi_tokens)
        self._mi_sum = self._mi_tokens = None
        return info

    # ----------------------------------------------------------------------------------------
    # routing statistics
    @torch.no_grad()
    def _record_routing(self, top_idx: Optional[torch.Tensor], num_experts: int,
                        task: TaskIndex, batch_size: int, num_tokens: int,
                        device: torch.device, **masses: torch.Tensor) -> None:
        """Count expert selections and sum per-token quantities, per task.

        Args:
            top_idx (Tensor | None): ``(M, k)`` selected experts; None = all ``num_experts``.
            num_experts (int): Routed experts ``E`` (width of ``counts``).
            task (int | Tensor): The forward's task index.
            batch_size (int): ``N``.
            num_tokens (int): ``M``.
            device (torch.device): Where the statistics live (the layer's device).
            **masses (Tensor): ``name -> (M,)`` per-token values (e.g. total gate weight of
                the shared experts); :meth:`routing_stats` reports their mean per task.
        """
        group = self._dense_token_groups(task, batch_size, num_tokens, device)
        if self._stats is None:
            self._stats = dict(
                counts=torch.zeros(self.num_tasks, num_experts, dtype=torch.float64,
                                   device=device),
                tokens=torch.zeros(self.num_tasks, dtype=torch.float64, device=device))
            for name in masses:
                self._stats[name] = torch.zeros(self.num_tasks, dtype=torch.float64,
                                                device=device)
        stats = self._stats
        if top_idx is None:
            selected = torch.ones(num_tokens, num_experts, dtype=torch.float64, device=device)
        else:
            selected = torch.zeros(num_tokens, num_experts, dtype=torch.float64,
                                   device=device).scatter_(-1, top_idx, 1.0)
        stats['counts'].index_add_(0, group, selected)
        stats['tokens'].index_add_(0, group, selected.new_ones(num_tokens))
        for name, value in masses.items():
            stats[name].index_add_(0, group, value.double())

    def routing_stats(self) -> Optional[Dict[str, torch.Tensor]]:
        """Routing statistics recorded while ``record_routing`` was on, or None.

        Returns:
            dict: ``counts`` ``(T, E)`` times each routed expert was selected, ``tokens``
            ``(T,)`` tokens routed, and for every recorded per-token quantity (the host layer
            documents which: e.g. ``sparse_mass``, ``shared_mass``, ``global_mass``) its mean
            per task ``(T,)``. All float64, on the layer's device.
        """
        if self._stats is None:
            return None
        tokens = self._stats['tokens'].clamp(min=1)
        result = dict(counts=self._stats['counts'].clone(), tokens=self._stats['tokens'].clone())
        for name, value in self._stats.items():
            if name not in result:
                result[name] = value / tokens
        return result

    def reset_routing_stats(self) -> None:
        self._stats = None
