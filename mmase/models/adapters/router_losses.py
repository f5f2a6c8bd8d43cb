"""The routers' auxiliary losses: Switch load balancing and Mod-Squad's task-expert mutual
information (both per task, from the routing of the tokens since the last call)."""
from typing import Optional

import torch

from .gates import _gate_dtype

def load_balance_loss(logits: torch.Tensor, top_idx: Optional[torch.Tensor], num_experts: int,
                      group: Optional[torch.Tensor] = None,
                      num_groups: int = 1) -> torch.Tensor:
    """Switch-Transformer load-balancing loss over the sparse experts, per task.

    ``loss = E * sum_i f_i * P_i`` with ``f_i`` the fraction of top-k selections that went to
    expert ``i`` (so ``sum_i f_i = 1``) and ``P_i`` the mean softmax probability of expert ``i``
    over the ``E`` sparse logits. It is 1 for perfectly uniform routing and ``E`` when one expert
    takes everything (Fedus et al., 2021, Eq. 4, with top-k counts normalised by k).

    Args:
        logits (Tensor): ``(M, E + S)`` router logits (tokens flattened); columns past ``E``
            (shared experts, gates of other kinds) are ignored.
        top_idx (Tensor | None): ``(M, k)`` selected experts (None: all ``E`` selected).
        num_experts (int): ``E``.
        group (Tensor, optional): ``(M,)`` task index of every token; None = one group.
        num_groups (int): Number of groups ``T`` when ``group`` is given.

    Returns:
        Tensor: ``(T,)`` loss per group (0 for groups without tokens); ``(1,)`` without groups.
    """
    probs = torch.softmax(logits[:, :num_experts].to(_gate_dtype(logits)), -1)
    if top_idx is None:
        select = torch.full_like(probs, 1.0 / num_experts)
    else:
        select = torch.zeros_like(probs).scatter_(-1, top_idx, 1.0 / top_idx.shape[1])
    if group is None:
        return num_experts * (select.mean(0) * probs.mean(0)).sum().reshape(1)
    tokens = torch.bincount(group, minlength=num_groups).clamp(min=1).to(probs.dtype)
    f = probs.new_zeros(num_groups, num_experts).index_add_(0, group, select)
    p = probs.new_zeros(num_groups, num_experts).index_add(0, group, probs)
    return num_experts * (f * p).sum(-1) / tokens.square()


def task_expert_mutual_information(prob_sum: torch.Tensor, tokens: torch.Tensor,
                                   eps: float = 1e-12) -> torch.Tensor:
    """Mutual information ``I(T; E)`` between tasks and experts (Mod-Squad, Chen et al., 2023).

    With ``P(e | t)`` the mean routing probability of task ``t``'s tokens and a uniform ``P(t)``
    over the tasks that have tokens, ``P(t, e) = P(t) P(e | t)``, ``P(e) = sum_t P(t, e)`` and

        I(T; E) = sum_t sum_e P(t, e) log(P(t, e) / (P(t) P(e))).

    It is 0 when every task routes alike and ``log T`` when the tasks use disjoint experts.

    Args:
        prob_sum (Tensor): ``(T, E)`` sum over each task's tokens of the routing probabilities
            (every row of probabilities sums to 1).
        tokens (Tensor): ``(T,)`` tokens summed per task (0: the task did not run).
        eps (float): Floor inside the logarithms.

    Returns:
        Tensor: scalar, in nats (differentiable through ``prob_sum``).
    """
    present = tokens > 0
    if int(present.sum()) < 2:
        return prob_sum.sum() * 0.0  # one task: I = 0 (keeps the graph)
    cond = prob_sum[present] / tokens[present].unsqueeze(-1).to(prob_sum.dtype)
    p_task = 1.0 / cond.shape[0]
    marginal = cond.mean(0)
    log_ratio = torch.log(cond.clamp(min=eps)) - torch.log(marginal.clamp(min=eps))
    return (p_task * cond * log_ratio).sum()
