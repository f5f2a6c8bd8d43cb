"""Random numbers of a training iteration that do not depend on how the run got there (resume)."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


def iteration_seed(seed: int, iteration: int) -> int:
    """The 64-bit torch seed of training iteration ``iteration`` (0-based) of a run seeded ``seed``.

    Mixed with numpy's ``SeedSequence`` so neighbouring iterations and seeds give unrelated
    streams. ``seed`` may be negative (taken modulo 2**64).
    """
    words = np.random.SeedSequence([int(seed) % (1 << 64), int(iteration)]).generate_state(
        2, dtype=np.uint32)
    return (int(words[0]) << 32) | int(words[1])


def get_rng_states() -> dict:
    """States of Python's ``random``, numpy's global RNG, torch's CPU and (when initialised)
    CUDA generators."""
    states = dict(python=random.getstate(), numpy=np.random.get_state(),
                  torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    """Restore states taken by :func:`get_rng_states`."""
    random.setstate(states['python'])
    np.random.set_state(states['numpy'])
    torch.set_rng_state(states['torch'])
    if 'cuda' in states:
        torch.cuda.set_rng_state_all(states['cuda'])


@HOOKS.register_module()
class PerIterSeedHook(Hook):
    """Make a resumed run draw the same random numbers as an uninterrupted one.

    mmengine seeds the generators once, at the start of a process. A run resumed at iteration N
    restores weights, optimizer and schedulers, and replays the data sampler and the pipeline's
    numpy draws (``IterBasedTrainLoop`` fetches and drops the first N batches), but torch's
    generator restarts from the seed, so dropout / drop-path masks after the resume differ from
    the uninterrupted run's (measured on the toy config with head dropout 0.1: 58 of 94 weight
    tensors differ after 2 resumed iterations). This hook

    - re-seeds torch (CPU and every CUDA device) before each training iteration ``i`` with
      :func:`iteration_seed` ``(runner.seed, i)``: the model's random numbers in iteration ``i`` are
      a function of the seed and ``i`` only, so a resumed run needs no generator state from the
      checkpoint (``runner.seed`` is restored from the checkpoint's ``meta.seed`` and already
      differs per rank when ``randomness.diff_rank_seed=True``);
    - keeps validation from moving any generator (Python, numpy, torch, CUDA): their states are
      saved before a validation and restored after it, so the training stream does not depend on
      ``val_interval`` (a resumed run does not repeat the validation at N).

    Random numbers drawn by the model's forward from numpy or Python's ``random`` are not covered
    (the numpy stream belongs to the data pipeline); mmase models draw only from torch.

    Args:
        seed (int, optional): Base seed; None (default) uses ``runner.seed``
            (``randomness.seed``).
    """

    priority = 'VERY_LOW'  # last before the forward

    def __init__(self, seed: Optional[int] = None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f'PerIterSeedHook.seed must be an int or None, got {seed!r}')
        self.seed = seed
        self._val_states: Optional[dict] = None

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        seed = self.seed if self.seed is not None else runner.seed
        torch.manual_seed(iteration_seed(seed, runner.iter))  # seeds every CUDA device too

    def before_val(self, runner) -> None:
        self._val_states = get_rng_states()

    def after_val(self, runner) -> None:
        if self._val_states is not None:
            set_rng_states(self._val_states)
            self._val_states = None
