"""TaskRouter: one bias-free linear router per task, batch-wide or per-sample."""
import pytest
import torch

from mmase.models.adapters import TaskRouter, check_task_index


def test_router_logits_by_hand():
    router = TaskRouter(in_features=2, num_logits=3, num_tasks=2)
    with torch.no_grad():
        router.weight.copy_(torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
                                          [[2.0, 0.0], [0.0, 0.0], [-1.0, 1.0]]]))
    x = torch.tensor([[[1.0, 2.0]], [[3.0, -1.0]]])  # (N=2, L=1, 2)
    assert router(x, 0).tolist() == [[[1.0, 2.0, 3.0]], [[3.0, -1.0, 2.0]]]
    assert router(x, 1).tolist() == [[[2.0, 0.0, 1.0]], [[6.0, 0.0, -4.0]]]
    # per sample: sample 0 -> task 1, sample 1 -> task 0
    assert router(x, torch.tensor([1, 0])).tolist() == [[[2.0, 0.0, 1.0]], [[3.0, -1.0, 2.0]]]


def test_router_init_is_not_constant():
    router = TaskRouter(16, 8, 3)
    assert router.weight.shape == (3, 8, 16)
    assert router.weight.std() > 0 and router.weight.abs().max() <= 0.25  # U(+-1/sqrt(16))


def test_per_sample_router_gradient_reaches_used_tasks_only():
    router = TaskRouter(4, 5, 3)
    router(torch.randn(2, 6, 4), torch.tensor([2, 2])).sum().backward()
    grad = router.weight.grad
    assert torch.count_nonzero(grad[:2]) == 0 and torch.count_nonzero(grad[2]) > 0


@pytest.mark.parametrize('task,error,message', [
    (3, IndexError, 'task index 3 out of range for 3 task'),
    (-1, IndexError, 'task index -1 out of range'),
    (True, TypeError, 'must be an int or a LongTensor'),
    ('semseg', TypeError, 'must be an int or a LongTensor'),
    (torch.tensor([0.0, 1.0]), ValueError, 'int64 tensor of shape'),
    (torch.tensor([[0, 1]]), ValueError, 'int64 tensor of shape'),
    (torch.tensor([0, 1, 2]), ValueError, '3 entries for a batch of 2 samples'),
])
def test_task_index_errors(task, error, message):
    with pytest.raises(error, match=message):
        check_task_index(task, num_tasks=3, batch_size=2)
