"""FGMoE: MLP reproduction, gating arithmetic by hand, per-task batching, gradients, errors."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from mmase.models.adapters import FGMoE

LN = math.log


def mlp_pair(d_in=8, hidden=16, d_out=8, seed=0):
    torch.manual_seed(seed)
    return nn.Linear(d_in, hidden), nn.Linear(hidden, d_out)


def dense_mlp(fc1, fc2, x):
    return fc2(F.gelu(fc1(x)))


def perturb_experts(module, seed=0, scale=0.1):
    """Make the task copies differ (they start as identical copies of the MLP)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in (module.expert_fc1_weight, module.expert_fc1_bias,
                      module.expert_fc2_weight, module.expert_fc2_bias):
            param.add_(scale * torch.randn(param.shape, generator=generator))


@pytest.mark.parametrize('global_expert', [True, False])
@pytest.mark.parametrize('task_specific', [True, False, 'shared_only'])
@pytest.mark.parametrize('task', [1, 'per-sample'])
def test_all_slices_with_unit_gates_reproduce_the_mlp(global_expert, task_specific, task):
    # top_k = every routed slice and a zero router: routed gates k * (1/k) = 1, shared 1,
    # global gate sigmoid(0) = 1/2 mixing two copies of the same MLP.
    fc1, fc2 = mlp_pair()
    x = torch.randn(3, 5, 8)
    expected = dense_mlp(fc1, fc2, x).detach()
    module = FGMoE(fc1, fc2, num_tasks=3, num_experts=4, top_k=3, num_shared=1,
                   global_expert=global_expert, task_specific_experts=task_specific)
    nn.init.zeros_(module.router.weight)
    index = torch.tensor([2, 0, 2]) if task == 'per-sample' else task
    torch.testing.assert_close(module(x, index), expected)


def test_expert_slices_are_copies_of_the_pretrained_mlp():
    fc1, fc2 = mlp_pair(d_in=6, hidden=12, d_out=5)
    module = FGMoE(fc1, fc2, num_tasks=2, num_experts=3, top_k=1, num_shared=1)
    assert module.slice_size == 4 and module.num_routed == 2
    assert module.expert_fc1_weight.shape == (2, 12, 6)
    assert module.expert_fc2_weight.shape == (2, 5, 12)
    for t in range(2):
        torch.testing.assert_close(module.expert_fc1_weight[t], fc1.weight, rtol=0, atol=0)
        torch.testing.assert_close(module.expert_fc1_bias[t], fc1.bias, rtol=0, atol=0)
        torch.testing.assert_close(module.expert_fc2_weight[t], fc2.weight, rtol=0, atol=0)
        torch.testing.assert_close(module.expert_fc2_bias[t], fc2.bias, rtol=0, atol=0)
    assert module.fc1 is fc1 and module.fc2 is fc2  # the global expert keeps the MLP
    assert module.expert_fc1_weight.data_ptr() != fc1.weight.data_ptr()  # copies, not views


def hand_module():
    """d = 2, H = 4 (4 slices of 1 unit: routed 0..2, shared 3), top-2, ReLU, 1 task."""
    fc1, fc2 = nn.Linear(2, 4), nn.Linear(4, 2)
    with torch.no_grad():  # the global expert
        fc1.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]))
        fc1.bias.zero_()
        fc2.weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0]]))
        fc2.bias.zero_()
    module = FGMoE(fc1, fc2, act=nn.ReLU(), num_tasks=1, num_experts=4, top_k=2,
                   num_shared=1)
    with torch.no_grad():  # the task's slices
        module.expert_fc1_weight[0] = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0],
                                                    [2.0, 0.0]])
        module.expert_fc1_bias.zero_()
        module.expert_fc2_weight[0] = torch.tensor([[1.0, 10.0, 100.0, 1000.0],
                                                    [0.0, 0.0, 0.0, 1.0]])
        module.expert_fc2_bias[0] = torch.tensor([0.5, -0.5])
        # logits = W x: column 0 for x1 = (1, 0), column 1 for x2 = (0, 1); last row: global
        module.router.weight[0] = torch.tensor([[LN(4), 0.0], [0.0, LN(8)], [LN(2), LN(2)],
                                                [LN(3), -LN(3)]])
    return module


def test_gating_arithmetic_by_hand():
    # x1: routed logits (ln4, 0, ln2) -> top-2 {0, 2}, softmax (2/3, 1/3), times k = 2:
    #     (4/3, 0, 2/3), shared slice 1; slice activations relu(W1 x1) = (1, 0, 1, 2)
    #     intra = 4/3 (1, 0) + 2/3 (100, 0) + 2 (1000, 1) + (0.5, -0.5) = (2068.5, 1.5)
    #     global = fc2 relu(fc1 x1) = fc2 (1, 0, 1, 0) = (2, 2); g = sigmoid(ln 3) = 3/4
    #     y1 = 1/4 (2068.5, 1.5) + 3/4 (2, 2) = (518.625, 1.875)
    # x2: routed (0, ln8, ln2) -> top-2 {1, 2}, softmax (0.8, 0.2) * 2 = (0, 1.6, 0.4);
    #     activations (0, 1, 1, 0): intra = 1.6 (10, 0) + 0.4 (100, 0) + (0.5, -0.5)
    #     = (56.5, -0.5); global = fc2 (0, 1, 0, 1) = (2, -2); g = sigmoid(-ln 3) = 1/4
    #     y2 = 3/4 (56.5, -0.5) + 1/4 (2, -2) = (42.875, -0.875)
    module = hand_module()
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    y = module(x, 0)[0]
    torch.testing.assert_close(y, torch.tensor([[518.625, 1.875], [42.875, -0.875]]))

    gates, top_idx = module.slice_gates(module.router(x, 0)[0])
    torch.testing.assert_close(gates, torch.tensor([[4 / 3, 0.0, 2 / 3, 1.0],
                                                    [0.0, 1.6, 0.4, 1.0]]))
    assert [sorted(row) for row in top_idx.tolist()] == [[0, 2], [1, 2]]

    module.record_routing = True
    module(x, 0)
    stats = module.routing_stats()
    assert stats['counts'][0].tolist() == [1.0, 1.0, 2.0]
    assert stats['tokens'].tolist() == [2.0]
    assert stats['global_mass'][0].item() == pytest.approx(0.5)  # (3/4 + 1/4) / 2
    module.reset_routing_stats()
    assert module.routing_stats() is None


def test_without_global_expert_the_output_is_the_intra_task_part():
    module = hand_module()
    plain = FGMoE(nn.Linear(2, 4), nn.Linear(4, 2), act=nn.ReLU(), num_experts=4, top_k=2,
                  num_shared=1, global_expert=False)
    assert not hasattr(plain, 'fc1') and plain.router.num_logits == 3
    with torch.no_grad():
        for name in ('expert_fc1_weight', 'expert_fc1_bias', 'expert_fc2_weight',
                     'expert_fc2_bias'):
            getattr(plain, name).copy_(getattr(module, name))
        plain.router.weight.copy_(module.router.weight[:, :3])
    y = plain(torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]), 0)[0]
    torch.testing.assert_close(y, torch.tensor([[2068.5, 1.5], [56.5, -0.5]]))


def test_per_sample_tasks_equal_per_task_calls():
    fc1, fc2 = mlp_pair()
    module = FGMoE(fc1, fc2, num_tasks=3, num_experts=8, top_k=2, num_shared=2)
    perturb_experts(module)
    x = torch.randn(4, 5, 8)
    task = torch.tensor([2, 0, 0, 1])
    out = module(x, task)
    for i, t in enumerate(task.tolist()):
        torch.testing.assert_close(out[i:i + 1], module(x[i:i + 1], t), rtol=1e-5, atol=1e-6)
    # the tasks' experts differ, so do their outputs
    assert (module(x, 0) - module(x, 1)).abs().max() > 1e-3


def test_tasks_with_shared_slices_differ_only_by_their_routers():
    fc1, fc2 = mlp_pair()
    module = FGMoE(fc1, fc2, num_tasks=2, num_experts=4, top_k=1, num_shared=1,
                   task_specific_experts=False)
    assert module.expert_fc1_weight.shape == (1, 16, 8)
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        module.router.weight[1] = module.router.weight[0]
    torch.testing.assert_close(module(x, 0), module(x, 1))
    torch.testing.assert_close(module(x, torch.tensor([1, 0])), module(x, 0))


@pytest.mark.parametrize('task', [0, 'per-sample'])
def test_gradients_reach_exactly_the_trainable_parameters(task):
    fc1, fc2 = mlp_pair()
    module = FGMoE(fc1, fc2, num_tasks=3, num_experts=4, top_k=2, num_shared=1)
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable == {'expert_fc1_weight', 'expert_fc1_bias', 'expert_fc2_weight',
                         'expert_fc2_bias', 'router.weight'}
    assert not fc1.weight.requires_grad and not fc2.bias.requires_grad  # global expert frozen
    index = torch.tensor([0, 2]) if task == 'per-sample' else 0
    module(torch.randn(2, 5, 8), index).square().sum().backward()
    assert fc1.weight.grad is None and fc2.weight.grad is None
    used = [0, 2] if task == 'per-sample' else [0]
    for name in trainable:
        grad = module.get_parameter(name).grad
        for t in range(3):  # only the tasks that ran receive gradient
            assert (torch.count_nonzero(grad[t]) > 0) == (t in used), (name, t)


def test_parameter_count():
    # per task: two full MLP weight copies + biases, and a router over R + 1 logits
    module = FGMoE(nn.Linear(384, 1536), nn.Linear(1536, 384), num_tasks=5, num_experts=16,
                   top_k=6, num_shared=2)
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    assert trainable == 5 * (2 * 384 * 1536 + 1536 + 384) + 5 * 384 * (14 + 1)
    assert module.slice_size == 96


def test_load_balance_loss_in_training_only():
    # A zero router: every P_i = 1/R, so R * sum_i f_i P_i = sum_i f_i = 1 exactly.
    module = FGMoE(*mlp_pair(), num_tasks=2, num_experts=4, top_k=1, num_shared=1,
                   load_balance=True)
    nn.init.zeros_(module.router.weight)
    x = torch.randn(2, 5, 8)
    module.eval()
    module(x, 0)
    assert module.pop_load_balance() is None
    module.train()
    module(x, 1)
    total, count = module.pop_load_balance()
    assert count.tolist() == [0.0, 1.0] and total[1].item() == pytest.approx(1.0)
    assert module.pop_load_balance() is None
    nn.init.normal_(module.router.weight)
    module(x, torch.tensor([0, 1]))
    total, count = module.pop_load_balance()
    total.sum().backward()
    assert torch.count_nonzero(module.router.weight.grad) > 0


def test_autocast_bfloat16_runs():
    module = FGMoE(*mlp_pair(), num_tasks=2, num_experts=4, top_k=2, num_shared=1)
    x = torch.randn(2, 3, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = module(x, torch.tensor([1, 0]))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), module(x, torch.tensor([1, 0])), rtol=0.05,
                               atol=0.05)


def test_build_from_registry():
    fc1, fc2 = mlp_pair()
    module = MODELS.build(dict(type='FGMoE', fc1=fc1, fc2=fc2, num_tasks=2, num_experts=8,
                               top_k=3, num_shared=1))
    assert isinstance(module, FGMoE)
    assert module.router.weight.shape == (2, 7 + 1, 8)


@pytest.mark.parametrize('kwargs,error,message', [
    (dict(num_experts=5), ValueError, 'num_experts=5 does not divide the MLP hidden size 16'),
    (dict(num_experts=4, num_shared=1, top_k=4), ValueError,
     r'top_k=4 exceeds the 3 routed slices \(num_experts=4 - num_shared=1\)'),
    (dict(num_experts=4, num_shared=4, top_k=1), ValueError,
     'num_shared=4 leaves no routed slice'),
    (dict(top_k=0), ValueError, 'top_k=0 must be >= 1'),
    (dict(num_shared=-1), ValueError, 'num_shared=-1 must be >= 0'),
    (dict(num_experts=4.0), TypeError, 'num_experts must be an int'),
    (dict(global_expert=1), TypeError, 'global_expert must be True or False'),
    (dict(num_tasks=0), ValueError, 'num_tasks=0 must be >= 1'),
    (dict(task_specific_experts='shared'), ValueError,
     r"task_specific_experts='shared' is not one of \(True, False, 'shared_only'\)"),
    (dict(task_specific_experts=1), ValueError, 'task_specific_experts=1 is not one of'),
])
def test_build_errors(kwargs, error, message):
    cfg = dict(num_experts=4, top_k=2, num_shared=1)
    cfg.update(kwargs)
    with pytest.raises(error, match=message):
        FGMoE(*mlp_pair(), **cfg)


def test_mlp_errors_and_task_check():
    with pytest.raises(TypeError, match='fc1 is a Conv2d, not an nn.Linear'):
        FGMoE(nn.Conv2d(8, 16, 1), nn.Linear(16, 8), num_experts=4, top_k=1)
    with pytest.raises(ValueError, match='fc1 has 16 outputs but fc2 takes 12 inputs'):
        FGMoE(nn.Linear(8, 16), nn.Linear(12, 8), num_experts=4, top_k=1)
    module = FGMoE(*mlp_pair(), num_tasks=2, num_experts=4, top_k=1)
    with pytest.raises(IndexError, match='task index 2 out of range for 2'):
        module(torch.randn(1, 3, 8), 2)


# ----------------------------------------------------------------------------------------------
# a trainable global expert (an MLP that is not pretrained, e.g. in the multi-task decoder)
def test_trainable_global_expert_gets_gradient_and_keeps_the_function():
    fc1, fc2 = mlp_pair()
    frozen = FGMoE(*mlp_pair(), num_tasks=2, num_experts=4, top_k=2, num_shared=1)
    module = FGMoE(fc1, fc2, num_tasks=2, num_experts=4, top_k=2, num_shared=1,
                   train_global_expert=True)
    module.router.load_state_dict(frozen.router.state_dict())
    x = torch.randn(2, 5, 8)
    index = torch.tensor([1, 0])
    # same weights, same function: only requires_grad differs
    torch.testing.assert_close(module(x, index), frozen(x, index), rtol=0, atol=0)
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable == {'expert_fc1_weight', 'expert_fc1_bias', 'expert_fc2_weight',
                         'expert_fc2_bias', 'router.weight', 'fc1.weight', 'fc1.bias',
                         'fc2.weight', 'fc2.bias'}
    module(x, index).square().sum().backward()
    for param in (fc1.weight, fc1.bias, fc2.weight, fc2.bias):
        assert param.grad is not None and torch.count_nonzero(param.grad) > 0
    assert 'train_global_expert=True' in repr(module)


def test_trainable_global_expert_needs_a_global_expert():
    with pytest.raises(ValueError, match='mlp_moe.train_global_expert=True needs a global '
                       'expert to train, but mlp_moe.global_expert=False'):
        FGMoE.check_config(16, prefix='mlp_moe.', num_experts=4, top_k=2, num_shared=1,
                           global_expert=False, task_specific_experts=True,
                           train_global_expert=True)
    with pytest.raises(TypeError, match='train_global_expert must be True or False'):
        FGMoE(*mlp_pair(), num_experts=4, top_k=2, num_shared=1, train_global_expert=1)
    # callers that predate the flag may leave it out
    FGMoE.check_config(16, num_experts=4, top_k=2, num_shared=1, global_expert=True,
                       task_specific_experts=True)


def test_shared_only_keeps_the_routed_slices_once_and_the_shared_slices_per_task():
    # H = 16 hidden units in 4 slices of 4: 3 routed (12 units), 1 shared (4 units); T = 3
    fc1, fc2 = mlp_pair()
    module = FGMoE(fc1, fc2, num_tasks=3, num_experts=4, top_k=2, num_shared=1,
                   task_specific_experts='shared_only')
    shapes = {n: tuple(p.shape) for n, p in module.named_parameters() if p.requires_grad}
    assert shapes == {'expert_fc1_weight': (1, 12, 8), 'expert_fc1_bias': (1, 12),
                      'expert_fc2_weight': (1, 8, 12), 'expert_fc2_bias': (1, 8),
                      'shared_fc1_weight': (3, 4, 8), 'shared_fc1_bias': (3, 4),
                      'shared_fc2_weight': (3, 8, 4), 'router.weight': (3, 3 + 1, 8)}
    assert module.per_task_parameter_names == ('shared_fc1_weight', 'shared_fc1_bias',
                                               'shared_fc2_weight')
    # expert parameters: routed 12 x 8 + 12 + 8 x 12 + 8 = 212, shared 3 x (4 x 8 + 4 + 8 x 4)
    # = 204; against 3 x (16 x 8 + 16 + 8 x 16 + 8) = 840 per task and 280 shared by all
    counts = {}
    for sharing in (True, False, 'shared_only'):
        layer = FGMoE(*mlp_pair(), num_tasks=3, num_experts=4, top_k=2, num_shared=1,
                      task_specific_experts=sharing)
        counts[sharing] = sum(getattr(layer, n).numel() for n in layer.expert_parameter_names
                              if hasattr(layer, n))
    assert counts == {True: 840, False: 280, 'shared_only': 416}
    for t in range(3):  # slices are the pretrained rows / columns
        torch.testing.assert_close(module.shared_fc1_weight[t], fc1.weight[12:], rtol=0, atol=0)
        torch.testing.assert_close(module.shared_fc2_weight[t], fc2.weight[:, 12:], rtol=0,
                                   atol=0)
    torch.testing.assert_close(module.expert_fc1_weight[0], fc1.weight[:12], rtol=0, atol=0)
    # same routers: the tasks differ by their shared slices only
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        module.router.weight[1] = module.router.weight[0]
    torch.testing.assert_close(module(x, 0), module(x, 1))
    with torch.no_grad():
        module.shared_fc2_weight[1].add_(0.5)
    assert (module(x, 0) - module(x, 1)).abs().max() > 1e-3
    # task 0 trains the routed slices, its shared slices and router rows, not task 1's
    module(x, torch.tensor([0, 2])).square().sum().backward()
    assert torch.count_nonzero(module.expert_fc1_weight.grad) > 0
    for name in ('shared_fc1_weight', 'shared_fc2_weight', 'router.weight'):
        grad = module.get_parameter(name).grad
        assert [bool(torch.count_nonzero(grad[t])) for t in range(3)] == [True, False, True]
