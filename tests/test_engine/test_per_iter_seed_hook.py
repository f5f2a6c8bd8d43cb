"""PerIterSeedHook: iteration i draws the same torch numbers however the run got to i."""
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mmase.engine import PerIterSeedHook
from mmase.engine.hooks.per_iter_seed_hook import get_rng_states, iteration_seed, set_rng_states


def dropout_mask(hook, seed, iteration):
    hook.before_train_iter(SimpleNamespace(seed=seed, iter=iteration), 0)
    return torch.nn.functional.dropout(torch.ones(64), p=0.5, training=True) > 0


def test_iteration_seed_is_a_fixed_64_bit_function():
    assert iteration_seed(0, 7) == iteration_seed(0, 7)
    seeds = {iteration_seed(s, i) for s in (0, 1, 2**40, -3) for i in range(50)}
    assert len(seeds) == 200  # distinct for every (seed, iteration)
    assert all(0 <= s < 2**64 for s in seeds)
    assert iteration_seed(-1, 0) == iteration_seed(2**64 - 1, 0)  # negative seeds wrap


def test_same_iteration_same_dropout_whatever_came_before():
    hook = PerIterSeedHook()
    first = dropout_mask(hook, seed=0, iteration=5)
    torch.rand(1000)  # an uninterrupted run drew other numbers in between
    assert torch.equal(dropout_mask(hook, seed=0, iteration=5), first)
    torch.manual_seed(0)  # a resumed process restarts from the seed
    assert torch.equal(dropout_mask(hook, seed=0, iteration=5), first)
    assert not torch.equal(dropout_mask(hook, seed=0, iteration=6), first)
    assert not torch.equal(dropout_mask(hook, seed=1, iteration=5), first)
    fixed = PerIterSeedHook(seed=1)  # an explicit seed wins over runner.seed
    assert torch.equal(dropout_mask(fixed, seed=0, iteration=5),
                       dropout_mask(hook, seed=1, iteration=5))


def test_validation_leaves_every_generator_where_it_was():
    hook = PerIterSeedHook()
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    hook.before_val(None)
    random.random(), np.random.rand(5), torch.rand(5)  # e.g. a dataloader iterator, TTA
    hook.after_val(None)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_state_round_trip_and_bad_seed():
    states = get_rng_states()
    a = torch.rand(3)
    set_rng_states(states)
    assert torch.equal(torch.rand(3), a)
    with pytest.raises(TypeError, match='PerIterSeedHook.seed must be an int'):
        PerIterSeedHook(seed='0')
