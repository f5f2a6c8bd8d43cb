"""TaskMoE: dense equivalence of copied experts, gating by hand, task-aware routing, dispatch
against a dense reference, gradients, load balancing, errors."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from mmase.models.adapters import TaskMoE

LN = math.log


def mlp_pair(d_in=8, hidden=16, d_out=8, seed=0):
    torch.manual_seed(seed)
    return nn.Linear(d_in, hidden), nn.Linear(hidden, d_out)


def dense_reference(module, x, task):
    """Every expert on every token, weighted by the module's gates (autograd only)."""
    _, gates, _ = module.route(x, task)
    flat = x.reshape(-1, module.in_features)
    out = 0
    for e in range(module.num_experts):
        expert = F.linear(module.act(F.linear(flat, module.fc1_weight[e], module.fc1_bias[e])),
                          module.fc2_weight[e], module.fc2_bias[e])
        out = out + gates[:, e:e + 1].to(expert.dtype) * expert
    return out.reshape(*x.shape[:-1], module.out_features)


@pytest.mark.parametrize('gating', ['task_router', 'task_embedding', 'task_level'])
@pytest.mark.parametrize('top_k', [1, 2, 4])
def test_copied_experts_reproduce_the_dense_mlp_for_any_routing(gating, top_k):
    # 'topk' gates sum to 1 over the selected experts (top-1: weight 1), so identical experts
    # give back the MLP whichever experts the (random) routers pick.
    fc1, fc2 = mlp_pair()
    x = torch.randn(3, 6, 8)
    expected = fc2(F.gelu(fc1(x))).detach()
    module = TaskMoE(fc1, fc2, num_tasks=3, num_experts=4, top_k=top_k, gating=gating)
    nn.init.normal_(module.router.weight)
    if module.task_embedding is not None:
        nn.init.normal_(module.task_embedding)
    for task in (0, 2, torch.tensor([2, 0, 1])):
        torch.testing.assert_close(module(x, task), expected, rtol=1e-5, atol=1e-6)
    _, gates, _ = module.route(x, 1)
    assert (torch.count_nonzero(gates, -1) == top_k).all()
    torch.testing.assert_close(gates.sum(-1), torch.ones(18))


def test_switch_gates_scale_copied_experts_by_the_selected_probability():
    # gate_norm='all': softmax over all experts kept at the selected ones, sum < 1.
    fc1, fc2 = mlp_pair()
    x = torch.randn(2, 5, 8)
    module = TaskMoE(fc1, fc2, num_tasks=2, num_experts=4, top_k=1, gate_norm='all')
    nn.init.normal_(module.router.weight)
    logits, gates, top_idx = module.route(x, 1)
    probs = torch.softmax(logits, -1)
    torch.testing.assert_close(gates.sum(-1), probs.max(-1).values)
    assert top_idx.shape == (10, 1)
    expected = gates.sum(-1).view(2, 5, 1) * fc2(F.gelu(fc1(x)))
    torch.testing.assert_close(module(x, 1), expected, rtol=1e-5, atol=1e-6)


def constant_experts(module, outputs):
    """Expert e outputs the constant vector outputs[e] (zero weights, bias = output)."""
    with torch.no_grad():
        for name in ('fc1_weight', 'fc1_bias', 'fc2_weight'):
            getattr(module, name).zero_()
        module.fc2_bias.copy_(torch.tensor(outputs))


def test_gating_by_hand():
    # E = 3 experts with constant outputs c_e; one token x = (1, 0).
    # Task 0 logits (ln 6, ln 3, 0): top-2 {0, 1} -> 'topk' (2/3, 1/3), 'all' (6/10, 3/10);
    #   top-1 {0} -> 'topk' 1, 'all' 6/10.
    # Task 1 logits (ln 2, 0, ln 4): top-2 {2, 0} -> 'topk' (2/3 at 2, 1/3 at 0), 'all'
    #   (4/7, 2/7); top-1 {2} -> 'topk' 1, 'all' 4/7.
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0], [10.0, 10.0]])
    router = torch.tensor([[[LN(6), 0.0], [LN(3), 0.0], [0.0, 0.0]],
                           [[LN(2), 0.0], [0.0, 0.0], [LN(4), 0.0]]])
    x = torch.tensor([[[1.0, 0.0]]])
    expected = {  # (top_k, gate_norm) -> (gates of task 0, gates of task 1)
        (2, 'topk'): ([2 / 3, 1 / 3, 0.0], [1 / 3, 0.0, 2 / 3]),
        (2, 'all'): ([0.6, 0.3, 0.0], [2 / 7, 0.0, 4 / 7]),
        (1, 'topk'): ([1.0, 0.0, 0.0], [0.0, 0.0, 1.0]),
        (1, 'all'): ([0.6, 0.0, 0.0], [0.0, 0.0, 4 / 7]),
    }
    for (top_k, norm), gates in expected.items():
        module = TaskMoE(nn.Linear(2, 4), nn.Linear(4, 2), num_tasks=2, num_experts=3,
                         top_k=top_k, gate_norm=norm)
        constant_experts(module, c.tolist())
        with torch.no_grad():
            module.router.weight.copy_(router)
        for task in (0, 1):
            want = torch.tensor(gates[task]) @ c
            torch.testing.assert_close(module(x, task)[0, 0], want)
            torch.testing.assert_close(module.route(x, task)[1][0], torch.tensor(gates[task]))


@pytest.mark.parametrize('gating', ['task_router', 'task_embedding'])
def test_different_tasks_route_differently(gating):
    # task_router: each task its own router; task_embedding: one router, z = R (x + e_t).
    module = TaskMoE(nn.Linear(2, 4), nn.Linear(4, 2), num_tasks=2, num_experts=2, top_k=1,
                     gating=gating)
    constant_experts(module, [[1.0, 0.0], [0.0, 1.0]])
    with torch.no_grad():
        if gating == 'task_router':
            assert module.router.weight.shape == (2, 2, 2)
            module.router.weight.copy_(torch.tensor([[[1.0, 0.0], [-1.0, 0.0]],
                                                     [[-1.0, 0.0], [1.0, 0.0]]]))
        else:
            assert module.router.weight.shape == (1, 2, 2)
            assert module.task_embedding.shape == (2, 2)
            module.router.weight.copy_(torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]))
            module.task_embedding.copy_(torch.tensor([[5.0, 0.0], [0.0, 5.0]]))
    x = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]]])  # the same token for both samples
    torch.testing.assert_close(module(x, 0), torch.tensor([[[1.0, 0.0]]] * 2))
    torch.testing.assert_close(module(x, 1), torch.tensor([[[0.0, 1.0]]] * 2))
    torch.testing.assert_close(module(x, torch.tensor([1, 0])),
                               torch.tensor([[[0.0, 1.0]], [[1.0, 0.0]]]))


def test_task_embedding_init_is_small_and_not_constant():
    module = TaskMoE(*mlp_pair(), num_tasks=3, gating='task_embedding')
    assert module.task_embedding.shape == (3, 8)
    assert 0 < module.task_embedding.std() < 0.1


@pytest.mark.parametrize('gating', ['task_router', 'task_embedding', 'task_level'])
@pytest.mark.parametrize('top_k,norm', [(1, 'all'), (2, 'topk'), (3, 'all')])
def test_sorted_dispatch_matches_dense_reference_with_gradients(gating, top_k, norm):
    torch.manual_seed(0)
    module = TaskMoE(*mlp_pair(), num_tasks=3, num_experts=5, top_k=top_k, gating=gating,
                     gate_norm=norm, init_noise=0.5).double()
    nn.init.normal_(module.router.weight)
    x = torch.randn(3, 7, 8, dtype=torch.float64, requires_grad=True)
    task = torch.tensor([2, 0, 2])
    params = [x] + [p for p in module.parameters()]
    out = module(x, task)
    grad = torch.randn_like(out)
    grads = torch.autograd.grad(out, params, grad)
    ref = dense_reference(module, x, task)
    ref_grads = torch.autograd.grad(ref, params, grad)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_per_sample_tasks_equal_per_task_calls():
    module = TaskMoE(*mlp_pair(), num_tasks=3, num_experts=4, top_k=2, init_noise=0.3)
    nn.init.normal_(module.router.weight)
    x = torch.randn(4, 5, 8)
    task = torch.tensor([2, 0, 0, 1])
    out = module(x, task)
    for i, t in enumerate(task.tolist()):
        torch.testing.assert_close(out[i:i + 1], module(x[i:i + 1], t), rtol=1e-5, atol=1e-6)


def test_every_expert_gets_a_gradient_even_without_tokens():
    # All tokens go to expert 0; the others still take part in the graph (zero gradient),
    # as DDP without find_unused_parameters needs.
    module = TaskMoE(*mlp_pair(), num_tasks=1, num_experts=3, top_k=1, gate_norm='all')
    with torch.no_grad():
        module.router.weight.zero_()
        module.router.weight[0, 0, 0] = 100.0
    x = torch.randn(1, 6, 8).abs()
    module(x, 0).sum().backward()
    for name in ('fc1_weight', 'fc1_bias', 'fc2_weight', 'fc2_bias'):
        grad = getattr(module, name).grad
        assert grad is not None and torch.count_nonzero(grad[0]) > 0
        assert torch.count_nonzero(grad[1:]) == 0
    assert module.router.weight.grad is not None


def test_gradients_reach_all_parameters():
    module = TaskMoE(*mlp_pair(), num_tasks=3, num_experts=4, top_k=2, gating='task_embedding',
                     gate_norm='all', init_noise=0.3)
    assert all(p.requires_grad for p in module.parameters())
    module(torch.randn(2, 5, 8), torch.tensor([0, 2])).square().sum().backward()
    for name, param in module.named_parameters():
        assert torch.count_nonzero(param.grad) > 0, name
    assert torch.count_nonzero(module.task_embedding.grad[1]) == 0  # task 1 did not run


def test_init_noise_is_relative_to_the_weight_scale():
    fc1, fc2 = mlp_pair(d_in=32, hidden=64, d_out=32)
    exact = TaskMoE(fc1, fc2, num_experts=3, init_noise=0.0)
    for e in range(3):
        torch.testing.assert_close(exact.fc1_weight[e], fc1.weight, rtol=0, atol=0)
        torch.testing.assert_close(exact.fc2_bias[e], fc2.bias, rtol=0, atol=0)
    noisy = TaskMoE(fc1, fc2, num_experts=3, init_noise=0.1)
    noise = noisy.fc1_weight.detach() - fc1.weight.detach()
    assert noise.std().item() == pytest.approx(0.1 * fc1.weight.std().item(), rel=0.1)
    assert (noise[0] - noise[1]).abs().max() > 0  # independent per expert
    torch.testing.assert_close(noisy.fc1_bias[1], fc1.bias, rtol=0, atol=0)


def test_load_balance_loss_and_routing_stats():
    # Zero router: all logits equal -> P_i = 1/E and E * sum_i f_i P_i = 1 exactly.
    module = TaskMoE(*mlp_pair(), num_tasks=2, num_experts=4, top_k=2, load_balance=True,
                     record_routing=True)
    nn.init.zeros_(module.router.weight)
    x = torch.randn(2, 5, 8)
    module.eval()
    module(x, 1)
    assert module.pop_load_balance() is None
    stats = module.routing_stats()
    assert stats['counts'].shape == (2, 4) and stats['counts'][1].sum().item() == 2 * 5 * 2
    assert stats['tokens'].tolist() == [0.0, 10.0]
    assert stats['sparse_mass'][1].item() == pytest.approx(1.0)  # 'topk' gates sum to 1
    module.train()
    module(x, torch.tensor([0, 1]))
    total, count = module.pop_load_balance()
    assert count.tolist() == [1.0, 1.0]
    torch.testing.assert_close(total, torch.tensor([1.0, 1.0]))


def test_autocast_bfloat16_runs():
    module = TaskMoE(*mlp_pair(), num_tasks=2, num_experts=4, top_k=2, init_noise=0.2)
    x = torch.randn(2, 3, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = module(x, torch.tensor([1, 0]))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), module(x, torch.tensor([1, 0])), rtol=0.05,
                               atol=0.05)


def test_build_from_registry():
    fc1, fc2 = mlp_pair()
    module = MODELS.build(dict(type='TaskMoE', fc1=fc1, fc2=fc2, num_tasks=2, num_experts=3,
                               top_k=1))
    assert isinstance(module, TaskMoE)
    assert module.fc1_weight.shape == (3, 16, 8) and module.fc2_weight.shape == (3, 8, 16)


@pytest.mark.parametrize('kwargs,error,message', [
    (dict(num_experts=2, top_k=3), ValueError, 'top_k=3 exceeds num_experts=2'),
    (dict(num_experts=0), ValueError, 'num_experts=0 must be >= 1'),
    (dict(top_k=1.0), TypeError, 'top_k must be an int'),
    (dict(gating='task_prompt'), ValueError, "gating='task_prompt' is not one of"),
    (dict(gate_norm='sigmoid'), ValueError, "gate_norm='sigmoid' is not one of"),
    (dict(init_noise=-0.1), ValueError, 'init_noise=-0.1 must be a number >= 0'),
    (dict(num_tasks=0), ValueError, 'num_tasks=0 must be >= 1'),
])
def test_build_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        TaskMoE(*mlp_pair(), **kwargs)


def test_mlp_errors_and_task_check():
    with pytest.raises(TypeError, match='fc2 is a Identity, not an nn.Linear'):
        TaskMoE(nn.Linear(8, 16), nn.Identity())
    module = TaskMoE(*mlp_pair(), num_tasks=2)
    with pytest.raises(ValueError, match='3 entries for a batch of 2'):
        module(torch.randn(2, 3, 8), torch.tensor([0, 1, 1]))


def test_top1_by_default_the_dense_models_compute():
    module = TaskMoE(*mlp_pair(), num_tasks=2)
    assert module.top_k == 1 and TaskMoE.CONFIG_DEFAULTS['top_k'] == 1
    _, gates, top_idx = module.route(torch.randn(2, 5, 8), 0)
    assert top_idx.shape == (10, 1) and (torch.count_nonzero(gates, -1) == 1).all()


def test_task_level_routing_by_hand():
    # The router sees only the task: logits w_t, the same for every token of the task.
    # Task 0: w = (0, ln 3, ln 6): top-1 {2}, 'all' gate 6/10; top-2 {2, 1}, 'topk' (1/3, 2/3).
    # Task 1: w = (ln 4, 0, 0): top-1 {0}, 'all' gate 4/6.
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0], [10.0, 10.0]])
    logits = torch.tensor([[0.0, LN(3), LN(6)], [LN(4), 0.0, 0.0]])
    x = torch.randn(2, 4, 2) * 5  # any tokens: they do not change the routing
    expected = {(1, 'all'): ([0.0, 0.0, 0.6], [4 / 6, 0.0, 0.0]),
                (2, 'topk'): ([0.0, 1 / 3, 2 / 3], None)}  # task 1: a tie between 1 and 2
    for (top_k, norm), gates in expected.items():
        module = TaskMoE(nn.Linear(2, 4), nn.Linear(4, 2), num_tasks=2, num_experts=3,
                         top_k=top_k, gating='task_level', gate_norm=norm)
        assert module.router.weight.shape == (2, 3, 1) and module.task_embedding is None
        assert module.per_task_parameter_names == ()
        constant_experts(module, c.tolist())
        with torch.no_grad():
            module.router.weight.copy_(logits.unsqueeze(-1))
        task = torch.tensor([0, 1]) if gates[1] is not None else torch.tensor([0, 0])
        out = module(x, task)
        for i in range(2):
            want = torch.tensor(gates[int(task[i])]) @ c
            torch.testing.assert_close(out[i], want.expand(4, 2))
        routed = module.route(x, task)[1].view(2, 4, 3)
        assert (routed == routed[:, :1]).all()  # every token of a sample routed alike


def test_task_embedding_is_a_per_task_parameter():
    module = TaskMoE(*mlp_pair(), num_tasks=3, gating='task_embedding')
    assert module.per_task_parameter_names == ('task_embedding', )
    assert TaskMoE(*mlp_pair(), num_tasks=3).per_task_parameter_names == ()


@pytest.mark.parametrize('gating,router_flops', [
    ('task_router', lambda n, m, d, e: 2 * m * d * e),  # a (d -> E) product per token
    ('task_level', lambda n, m, d, e: 2 * n * 1 * e),  # one (1 -> E) product per sample
])
def test_top1_costs_one_mlp_per_token_plus_the_router(gating, router_flops):
    # FLOPs (2 x MACs, torch's counter) of the layer against the dense MLP on the same tokens
    from torch.utils.flop_counter import FlopCounterMode
    n, length, d, hidden, e = 2, 5, 8, 16, 4
    x = torch.randn(n, length, d)
    mlp = 2 * n * length * (d * hidden + hidden * d)
    for top_k in (1, 2):
        module = TaskMoE(*mlp_pair(d, hidden, d), num_tasks=3, num_experts=e, top_k=top_k,
                         gating=gating)
        with FlopCounterMode(display=False) as counter:
            module(x, torch.tensor([2, 0]))
        assert counter.get_total_flops() == top_k * mlp + router_flops(n, n * length, d, e)
