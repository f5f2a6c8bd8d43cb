"""MoELoRALinear / MoELoRAFFN: gating arithmetic by hand, fused backward vs a loop reference
(output, parameters and the router-logit path of the auxiliary losses), the paper's budgets,
errors."""
import math

import pytest
import torch
import torch.nn as nn

from mmase.models.adapters import (LoRALinear, MoELoRAFFN, MoELoRALinear, load_balance_loss,
                                   moe_gates, task_expert_mutual_information)

LN = math.log

# Hand example (d_in = d_out = 2, rank 1). Experts 0..2 sparse, 3 shared.
W0 = [[1.0, 2.0], [3.0, 4.0]]
B0 = [0.5, -0.5]
A = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]]  # row e = expert e's A
B = [[1.0, 10.0, 100.0, 1000.0], [0.0, 0.0, 0.0, 1.0]]  # column e = expert e's B
# Router of task 0: column 0 gives the logits of x1 = (1, 0), column 1 those of x2 = (0, 1).
ROUTER = [[LN(4), LN(2)], [0.0, LN(8)], [LN(2), 0.0], [LN(2), LN(4)]]
X = [[1.0, 0.0], [0.0, 1.0]]


def hand_module(shared_gating, num_shared=1, alpha=None):
    """N = 3 + S, k=2, r=1 with the weights above (the shared expert dropped when S = 0)."""
    n = 3 + num_shared
    module = MoELoRALinear(nn.Linear(2, 2), num_tasks=1, num_experts=n, top_k=2,
                           num_shared=num_shared, rank=1, alpha=alpha,
                           shared_gating=shared_gating)
    with torch.no_grad():
        module.base_layer.weight.copy_(torch.tensor(W0))
        module.base_layer.bias.copy_(torch.tensor(B0))
        module.lora_A.copy_(torch.tensor(A)[:n])
        module.lora_B.copy_(torch.tensor(B)[:, :n])
        module.router.weight.copy_(torch.tensor(ROUTER)[:n].unsqueeze(0))
    return module


def test_adaptive_gating_by_hand():
    # x1: sparse logits (ln4, 0, ln2) -> top-2 {0, 2}; joint softmax with the shared ln2:
    #     (4, 2, 2) / 8 -> g0 = 1/2, g2 = 1/4, g_shared = 1/4; A x1 = (1, 0, 1, 1)
    #     y1 = (1.5, 2.5) + 1/2 (1, 0) + 1/4 (100, 0) + 1/4 (1000, 1) = (277, 2.75)
    # x2: sparse (ln2, ln8, 0) -> top-2 {1, 0}; joint with shared ln4: (2, 8, 4) / 14;
    #     A x2 = (0, 1, 1, -1) -> y2 = (2.5, 3.5) + 8/14 (10, 0) - 4/14 (1000, 1)
    module = hand_module('adaptive')
    y = module(torch.tensor(X).unsqueeze(0), 0)[0]
    expected = torch.tensor([[277.0, 2.75], [2.5 + (80 - 4000) / 14, 3.5 - 4 / 14]])
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-4)


def test_fixed_gating_by_hand():
    # x1: softmax over the selected (ln4, ln2) = (2/3, 1/3), shared weight 1:
    #     y1 = (1.5, 2.5) + 2/3 (1, 0) + 1/3 (100, 0) + (1000, 1) = (1035.5, 3.5)
    # x2: selected (ln8, ln2) -> expert 1: 0.8, expert 0: 0.2 (A_0 x2 = 0); shared: -(1000, 1)
    #     y2 = (2.5, 3.5) + 0.8 (10, 0) - (1000, 1) = (-989.5, 2.5)
    module = hand_module('fixed')
    y = module(torch.tensor(X).unsqueeze(0), 0)[0]
    torch.testing.assert_close(y, torch.tensor([[1035.5, 3.5], [-989.5, 2.5]]), rtol=1e-5,
                               atol=1e-4)


def test_none_gating_by_hand_with_alpha():
    # no shared expert; alpha = 3, rank 1 -> scale 3
    # x1: (2/3, 0, 1/3) -> 3 * (2/3 + 100/3, 0) = (102, 0) -> y1 = (103.5, 2.5)
    # x2: (0.2, 0.8, 0) -> 3 * (8, 0) = (24, 0) -> y2 = (26.5, 3.5)
    module = hand_module('none', num_shared=0, alpha=3.0)
    assert module.scaling == 3.0
    y = module(torch.tensor(X).unsqueeze(0), 0)[0]
    torch.testing.assert_close(y, torch.tensor([[103.5, 2.5], [26.5, 3.5]]), rtol=1e-5,
                               atol=1e-4)


def test_moe_gates_dense_matrix():
    logits = torch.tensor([[LN(4), 0.0, LN(2), LN(2)]])
    gates, top_idx = moe_gates(logits, 3, 2, 'adaptive')
    torch.testing.assert_close(gates, torch.tensor([[0.5, 0.0, 0.25, 0.25]]))
    assert sorted(top_idx[0].tolist()) == [0, 2]
    gates, _ = moe_gates(logits, 3, 2, 'fixed')
    torch.testing.assert_close(gates, torch.tensor([[2 / 3, 0.0, 1 / 3, 1.0]]))
    gates, top_idx = moe_gates(logits[:, :3], 3, 3, 'none')  # k == E: plain softmax
    assert top_idx is None
    torch.testing.assert_close(gates, torch.tensor([[4 / 7, 1 / 7, 2 / 7]]))


def test_routing_stats_by_hand():
    module = hand_module('adaptive')
    assert module.routing_stats() is None
    module(torch.tensor(X).unsqueeze(0), 0)
    assert module._stats is None  # off by default: nothing recorded
    module.record_routing = True
    module(torch.tensor(X).unsqueeze(0), 0)
    stats = module.routing_stats()
    assert stats['counts'][0].tolist() == [2.0, 1.0, 1.0]  # x1 -> {0, 2}, x2 -> {1, 0}
    assert stats['tokens'].tolist() == [2.0]
    assert stats['shared_mass'][0].item() == pytest.approx((0.25 + 4 / 14) / 2)
    assert stats['sparse_mass'][0].item() == pytest.approx((0.75 + 10 / 14) / 2)
    module.reset_routing_stats()
    assert module.routing_stats() is None


def test_fresh_adapter_is_identity_and_base_frozen():
    base = nn.Linear(8, 5)
    module = MoELoRALinear(base, num_tasks=2, num_experts=4, top_k=2, num_shared=1, rank=3)
    assert module.base_layer is base  # wraps, does not copy
    assert not base.weight.requires_grad and not base.bias.requires_grad
    assert torch.count_nonzero(module.lora_B) == 0 and torch.count_nonzero(module.lora_A) > 0
    bound = 1 / math.sqrt(8)  # kaiming-uniform(a=sqrt(5)) as nn.Linear: U(-1/sqrt(d_in), ...)
    assert module.lora_A.abs().max() <= bound
    x = torch.randn(3, 7, 8)
    torch.testing.assert_close(module(x, 1), base(x))
    torch.testing.assert_close(module(x, torch.tensor([0, 1, 1])), base(x))


# The paper's grid (PAPERS.md): N/k/S/r, sparse pool N - S, stored N r = 64, active (k+S) r = 16.
PAPER_GRID = [((16, 3, 1, 4), 15), ((32, 6, 2, 2), 30), ((64, 12, 4, 1), 60), ((16, 4, 0, 4), 16),
              ((32, 8, 0, 2), 32)]


@pytest.mark.parametrize('cfg,sparse_pool', PAPER_GRID)
def test_paper_grid_stores_64_ranks_and_activates_16(cfg, sparse_pool):
    num_experts, top_k, num_shared, rank = cfg
    gating = 'adaptive' if num_shared else 'none'
    module = MoELoRALinear(nn.Linear(384, 384), num_tasks=5, num_experts=num_experts,
                           top_k=top_k, num_shared=num_shared, rank=rank, shared_gating=gating)
    assert module.num_sparse == sparse_pool and module.notation() == '/'.join(map(str, cfg))
    assert module.lora_A.shape == (64, 384) and module.lora_B.shape == (384, 64)
    assert module.router.weight.shape == (5, num_experts, 384)  # one logit per expert
    nn.init.normal_(module.lora_B)
    module.record_routing = True
    module(torch.randn(2, 9, 384), 1)
    stats = module.routing_stats()
    # every token: k sparse experts of the pool, plus the S shared ones -> (k + S) r = 16 ranks
    assert stats['counts'].shape == (5, sparse_pool)
    assert stats['counts'][1].sum().item() == 18 * top_k
    assert (top_k + num_shared) * rank == 16


def reference_forward(module, x, task, return_logits=False):
    """The defining sum over experts, with autograd (no fused kernel)."""
    n = x.shape[0]
    flat = x.reshape(n, -1, module.in_features)
    weight = module.router.weight[task]
    logits = flat @ weight.transpose(-1, -2)
    gates, top_idx = moe_gates(logits.reshape(-1, module.num_experts), module.num_sparse,
                               module.top_k, module.shared_gating)
    gates = gates.reshape(n, -1, module.num_experts)
    base = getattr(module, 'base_layer', None)
    out = base(flat) if base is not None else 0.0
    r = module.rank
    for e in range(module.num_experts):
        a, b = module.lora_A[e * r:(e + 1) * r], module.lora_B[:, e * r:(e + 1) * r]
        out = out + module.scaling * gates[..., e:e + 1] * (flat @ a.t() @ b.t())
    if return_logits:
        return out.reshape(*x.shape[:-1], -1), logits.reshape(-1, module.num_experts), top_idx
    return out.reshape(*x.shape[:-1], -1)


@pytest.mark.parametrize('gating,num_shared', [('adaptive', 2), ('fixed', 2), ('none', 0),
                                               ('adaptive', 0)])
@pytest.mark.parametrize('top_k', [2, 5])
@pytest.mark.parametrize('per_sample', [False, True])
def test_fused_matches_loop_reference(gating, num_shared, top_k, per_sample):
    torch.manual_seed(0)
    module = MoELoRALinear(nn.Linear(6, 7), num_tasks=3, num_experts=5 + num_shared,
                           top_k=top_k, num_shared=num_shared, rank=2, alpha=3.0,
                           shared_gating=gating).double()
    nn.init.normal_(module.lora_B)
    module.base_layer.weight.requires_grad_(True)  # e.g. unfrozen by a `trainable` pattern
    x = torch.randn(3, 4, 6, dtype=torch.float64, requires_grad=True)
    task = torch.tensor([2, 0, 2]) if per_sample else 1
    params = [x, module.lora_A, module.lora_B, module.router.weight, module.base_layer.weight]
    out = module(x, task)
    grad = torch.randn_like(out)
    grads = torch.autograd.grad(out, params, grad)
    ref = reference_forward(module, x, task)
    ref_grads = torch.autograd.grad(ref, params, grad)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    if per_sample:  # the router of task 1 was not used
        assert torch.count_nonzero(grads[3][1]) == 0


@pytest.mark.parametrize('per_sample', [False, True])
def test_gradcheck(per_sample):
    torch.manual_seed(1)
    module = MoELoRALinear(nn.Linear(4, 3), num_tasks=2, num_experts=4, top_k=2, num_shared=1,
                           rank=2).double()
    nn.init.normal_(module.lora_B)
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    task = torch.tensor([1, 0]) if per_sample else 1
    assert torch.autograd.gradcheck(lambda inp: module(inp, task), (x, ))


@pytest.mark.parametrize('placement', ['linear', 'ffn'])
@pytest.mark.parametrize('per_sample', [False, True])
def test_gradcheck_over_parameters(placement, per_sample):
    """gradcheck of the fused backward with respect to the input, A, B and the router."""
    torch.manual_seed(2)
    kwargs = dict(num_tasks=2, num_experts=4, top_k=2, num_shared=1, rank=2, alpha=3.0)
    if placement == 'linear':
        module, prefix = MoELoRALinear(nn.Linear(4, 3), **kwargs).double(), ''
    else:
        ffn = nn.Sequential()
        ffn.fc1, ffn.act, ffn.fc2 = nn.Linear(4, 6), nn.GELU(), nn.Linear(6, 4)
        module, prefix = MoELoRAFFN(ffn, **kwargs).double(), 'experts.'
    experts = module if placement == 'linear' else module.experts
    task = torch.tensor([1, 0]) if per_sample else 1
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    params = [experts.lora_A, experts.router.weight,
              torch.randn_like(experts.lora_B)]  # nonzero B, else the gates get no gradient
    params = [p.detach().clone().requires_grad_(True) for p in params]

    def fn(inp, lora_a, router_w, lora_b):
        names = ('lora_A', 'router.weight', 'lora_B')
        state = {prefix + n: t for n, t in zip(names, (lora_a, router_w, lora_b))}
        return torch.func.functional_call(module, state, (inp, task))

    assert torch.autograd.gradcheck(fn, (x, *params))


@pytest.mark.parametrize('gating,num_shared', [('adaptive', 1), ('fixed', 1), ('none', 0)])
def test_router_gradient_through_auxiliary_losses_matches_autograd(gating, num_shared):
    """The fused function's logits output carries the load-balancing and mutual-information
    gradients to the router exactly as autograd through the defining formulas does."""
    torch.manual_seed(3)
    module = MoELoRALinear(nn.Linear(5, 4), num_tasks=2, num_experts=4 + num_shared, top_k=2,
                           num_shared=num_shared, rank=2, shared_gating=gating,
                           load_balance=True, mutual_information=True).double()
    nn.init.normal_(module.lora_B)
    x = torch.randn(4, 3, 5, dtype=torch.float64)
    task = torch.tensor([0, 1, 1, 0])
    grad = torch.randn(4, 3, 4, dtype=torch.float64)
    params = [module.lora_A, module.lora_B, module.router.weight]

    out = module(x, task)
    lb_sum, lb_count = module.pop_load_balance()
    info = module.pop_mutual_information()
    total = (out * grad).sum() + (lb_sum / lb_count).sum() - 0.5 * info
    got = torch.autograd.grad(total, params)

    ref, logits, top_idx = reference_forward(module, x, task, return_logits=True)
    group = task.repeat_interleave(3)
    ref_lb = load_balance_loss(logits, top_idx, module.num_sparse, group, 2)
    probs = torch.softmax(logits[:, :module.num_gated], -1)
    prob_sum = torch.zeros(2, probs.shape[1], dtype=probs.dtype).index_add(0, group, probs)
    ref_info = task_expert_mutual_information(prob_sum, torch.bincount(group).double())
    torch.testing.assert_close(info, ref_info)
    ref_total = (ref * grad).sum() + ref_lb.sum() - 0.5 * ref_info
    want = torch.autograd.grad(ref_total, params)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)


def make_ffn(d=6, hidden=10):
    ffn = nn.Module()
    ffn.fc1, ffn.act, ffn.fc2 = nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d)
    ffn.forward = lambda x: ffn.fc2(ffn.act(ffn.fc1(x)))
    return ffn


def test_ffn_experts_sit_beside_the_frozen_ffn():
    torch.manual_seed(0)
    ffn = make_ffn()
    layer = MoELoRAFFN(ffn, num_tasks=2, num_experts=4, top_k=2, num_shared=1, rank=2)
    # the FFN's weights keep their names and are frozen; the experts are new
    names = {n: p.requires_grad for n, p in layer.named_parameters()}
    assert names == {'fc1.weight': False, 'fc1.bias': False, 'fc2.weight': False,
                     'fc2.bias': False, 'experts.lora_A': True, 'experts.lora_B': True,
                     'experts.router.weight': True}
    assert layer.fc1 is ffn.fc1 and layer.ffn is ffn
    x = torch.randn(2, 5, 6)
    torch.testing.assert_close(layer(x, 1), ffn(x))  # fresh experts: B = 0
    nn.init.normal_(layer.experts.lora_B)
    # y = FFN(x) + sum_i g_i B_i A_i x: the same experts as a per-linear adapter on a zero linear
    zero = nn.Linear(6, 6)
    nn.init.zeros_(zero.weight)
    nn.init.zeros_(zero.bias)
    twin = MoELoRALinear(zero, num_tasks=2, num_experts=4, top_k=2, num_shared=1, rank=2)
    twin.load_state_dict({**twin.state_dict(), **{k[len('experts.'):]: v for k, v in
                                                  layer.state_dict().items()
                                                  if k.startswith('experts.')}})
    task = torch.tensor([1, 0])
    torch.testing.assert_close(layer(x, task), ffn(x) + twin(x, task))
    ref = reference_forward(layer.experts, x, task)
    torch.testing.assert_close(layer(x, task), ffn(x) + ref)


def test_ffn_wrapper_errors():
    with pytest.raises(ValueError, match='no nn.Linear fc1/fc2'):
        MoELoRAFFN(nn.GELU())
    ffn = make_ffn()
    ffn.scale = nn.Parameter(torch.ones(1))
    with pytest.raises(ValueError, match='holds parameters of its own'):
        MoELoRAFFN(ffn)


def test_mutual_information_by_hand():
    # Two tasks, three experts: P(e|t1) = (0.7, 0.2, 0.1), P(e|t2) = (0.1, 0.3, 0.6), P(t) = 1/2
    # P(e) = (0.4, 0.25, 0.35); I = 1/2 sum_t sum_e P(e|t) ln(P(e|t) / P(e))
    cond = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], dtype=torch.float64)
    marg = cond.mean(0)
    expected = 0.5 * sum(cond[t, e].item() * LN(cond[t, e].item() / marg[e].item())
                         for t in range(2) for e in range(3))
    assert expected == pytest.approx(0.5 * (0.7 * LN(0.7 / 0.4) + 0.2 * LN(0.2 / 0.25)
                                            + 0.1 * LN(0.1 / 0.35) + 0.1 * LN(0.1 / 0.4)
                                            + 0.3 * LN(0.3 / 0.25) + 0.6 * LN(0.6 / 0.35)))
    tokens = torch.tensor([4.0, 2.0], dtype=torch.float64)  # sums over 4 and 2 tokens
    info = task_expert_mutual_information(cond * tokens[:, None], tokens)
    assert info.item() == pytest.approx(expected, rel=1e-12)
    # equal routing -> 0; disjoint experts -> ln 2; a task without tokens is left out
    same = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], dtype=torch.float64)
    assert task_expert_mutual_information(same, torch.ones(2)).item() == pytest.approx(0.0)
    apart = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert task_expert_mutual_information(apart, torch.tensor([1.0, 1.0, 0.0])).item() == \
        pytest.approx(LN(2))
    assert task_expert_mutual_information(apart[:1], torch.ones(1)).item() == 0.0


def test_mutual_information_loss_gradient_raises_it():
    """A few steps of gradient descent on -I(T; E) alone make two tasks' routers diverge."""
    torch.manual_seed(0)
    module = MoELoRALinear(nn.Linear(8, 8), num_tasks=2, num_experts=4, top_k=2, num_shared=0,
                           rank=1, shared_gating='none', mutual_information=True)
    x = torch.randn(4, 16, 8)
    task = torch.tensor([0, 0, 1, 1])
    optim = torch.optim.SGD([module.router.weight], lr=5.0)
    values = []
    for _ in range(30):
        module(x, task)
        info = module.pop_mutual_information()
        values.append(info.item())
        optim.zero_grad()
        (-info).backward()
        optim.step()
    assert values[0] < 1e-3  # random routers: the tasks route nearly alike
    assert values[-1] > 0.3 and values[-1] > 100 * values[0]  # ln 2 = 0.69 at most
    assert all(b >= a - 1e-6 for a, b in zip(values, values[1:]))  # monotone ascent


def test_per_sample_tasks_equal_per_task_calls():
    torch.manual_seed(0)
    module = MoELoRALinear(nn.Linear(8, 8), num_tasks=3, num_experts=6, top_k=2, num_shared=1,
                           rank=2)
    nn.init.normal_(module.lora_B)
    x = torch.randn(4, 5, 8)
    task = torch.tensor([2, 0, 0, 1])
    out = module(x, task)
    for i, t in enumerate(task.tolist()):
        torch.testing.assert_close(out[i:i + 1], module(x[i:i + 1], t))


def test_load_balance_loss_by_hand():
    # E=2, k=1; probs (3/4, 1/4), (3/4, 1/4), (1/4, 3/4); selections 0, 0, 1
    # f = (2/3, 1/3), P = (7/12, 5/12): 2 * (14/36 + 5/36) = 19/18. The shared column is ignored.
    logits = torch.tensor([[LN(3), 0.0, 5.0], [LN(3), 0.0, -1.0], [0.0, LN(3), 0.0]])
    top_idx = torch.tensor([[0], [0], [1]])
    loss = load_balance_loss(logits, top_idx, num_experts=2)
    assert loss.item() == pytest.approx(19 / 18)
    # per task: tokens 1-2 (task 0) f = (1, 0), P = (3/4, 1/4) -> 1.5; token 3 (task 1) -> 1.5
    per_task = load_balance_loss(logits, top_idx, 2, group=torch.tensor([0, 0, 1]),
                                 num_groups=3)
    torch.testing.assert_close(per_task, torch.tensor([1.5, 1.5, 0.0]))
    # top-2 of 3, one token, probs (1, 2, 3)/6: f = (0, 1/2, 1/2) -> 3 * 5/12 = 1.25
    loss = load_balance_loss(torch.tensor([[0.0, LN(2), LN(3)]]), torch.tensor([[1, 2]]), 3)
    assert loss.item() == pytest.approx(1.25)


def test_module_collects_load_balance_in_training_only():
    module = MoELoRALinear(nn.Linear(2, 2), num_tasks=2, num_experts=2, top_k=1, rank=1,
                           shared_gating='none', load_balance=True)
    with torch.no_grad():
        module.router.weight.copy_(torch.tensor([[[LN(3), 0.0], [0.0, LN(3)]]] * 2))
    x = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])  # logits as the hand example
    module.eval()
    module(x, 0)
    assert module.pop_load_balance() is None
    module.train()
    module(x, 0)
    module(x, 0)
    total, count = module.pop_load_balance()
    torch.testing.assert_close(total / count.clamp(min=1), torch.tensor([19 / 18, 0.0]))
    assert count.tolist() == [2.0, 0.0]
    assert module.pop_load_balance() is None  # cleared
    module(torch.cat([x, x]), torch.tensor([1, 1]))
    total, count = module.pop_load_balance()
    assert count.tolist() == [0.0, 1.0]
    assert total[1].item() == pytest.approx(19 / 18)
    assert total.requires_grad  # trains the router


def test_plain_lora_is_the_single_expert_case():
    torch.manual_seed(0)
    base = nn.Linear(5, 4)
    module = LoRALinear(base, rank=2, alpha=4.0)
    assert isinstance(module, MoELoRALinear) and module.router is None
    assert (module.num_experts, module.top_k, module.num_shared) == (1, 1, 0)
    nn.init.normal_(module.lora_B)
    x = torch.randn(2, 3, 5)
    expected = base(x) + 2.0 * (x @ module.lora_A.t() @ module.lora_B.t())
    torch.testing.assert_close(module(x, 0), expected)
    module(x, 0).sum().backward()
    assert module.lora_A.grad is not None and base.weight.grad is None
    assert sum(p.numel() for p in module.parameters() if p.requires_grad) == 2 * (5 + 4)


def test_autocast_bfloat16_runs():
    torch.manual_seed(0)
    module = MoELoRALinear(nn.Linear(8, 8), num_experts=4, top_k=2, num_shared=1, rank=2)
    nn.init.normal_(module.lora_B)
    x = torch.randn(2, 3, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = module(x, 0)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), module(x, 0), rtol=0.05, atol=0.05)
    out.float().sum().backward()
    assert module.lora_A.grad.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
@pytest.mark.parametrize('per_sample', [False, True])
def test_cuda_matches_cpu(per_sample):
    """The fused function on a GPU: outputs and every gradient equal the CPU's (float32), and
    bfloat16 autocast stays close and keeps float32 gradients."""
    torch.manual_seed(0)
    module = MoELoRALinear(nn.Linear(48, 40), num_tasks=2, num_experts=8, top_k=2,
                           num_shared=1, rank=2, alpha=4.0)
    nn.init.normal_(module.lora_B)
    x = torch.randn(3, 50, 48)
    task = torch.tensor([1, 0, 1]) if per_sample else 1
    grad = torch.randn(3, 50, 40)
    results = []
    for device in ('cpu', 'cuda'):
        module.to(device)
        xd = x.detach().to(device).requires_grad_(True)
        td = task.to(device) if per_sample else task
        out = module(xd, td)
        out.backward(grad.to(device))
        grads = [xd.grad, module.lora_A.grad, module.lora_B.grad, module.router.weight.grad]
        results.append([t.detach().cpu() for t in [out] + grads])
        module.zero_grad(set_to_none=True)
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    with torch.autocast('cuda', dtype=torch.bfloat16):
        out = module(x.cuda(), task.cuda() if per_sample else task)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float().cpu(), results[0][0], rtol=0.05, atol=0.3)
    out.float().sum().backward()
    assert module.lora_A.grad.dtype == torch.float32


@pytest.mark.parametrize('kwargs,error,message', [
    (dict(num_experts=3, top_k=4), ValueError, 'top_k=4 exceeds the sparse pool of 3 experts'),
    (dict(num_experts=4, top_k=4, num_shared=1), ValueError,
     'top_k=4 exceeds the sparse pool of 3 experts'),
    (dict(num_experts=2, num_shared=2), ValueError, 'num_shared=2 leaves no sparse expert'),
    (dict(rank=0), ValueError, 'rank=0 must be >= 1'),
    (dict(num_experts=0), ValueError, 'num_experts=0 must be >= 1'),
    (dict(shared_gating='soft'), ValueError, "shared_gating='soft' is not one of"),
    (dict(shared_gating='none', num_shared=1), ValueError, 'num_shared=1'),
    (dict(alpha=-1.0), ValueError, 'alpha=-1.0 must be a positive number'),
    (dict(rank=2.0), TypeError, 'rank must be an int'),
    (dict(num_tasks=0), ValueError, 'num_tasks=0'),
])
def test_build_errors(kwargs, error, message):
    with pytest.raises(error, match=message.replace('(', r'\(')):
        MoELoRALinear(nn.Linear(4, 4), **kwargs)


def test_wraps_only_linear_and_checks_task():
    with pytest.raises(TypeError, match='wraps an nn.Linear'):
        MoELoRALinear(nn.Conv2d(3, 3, 1))
    module = MoELoRALinear(nn.Linear(4, 4), num_tasks=2, num_experts=2, top_k=1)
    with pytest.raises(IndexError, match='task index 2 out of range for 2'):
        module(torch.randn(1, 4), 2)
    with pytest.raises(ValueError, match='3 entries for a batch of 2'):
        module(torch.randn(2, 4), torch.tensor([0, 1, 1]))
