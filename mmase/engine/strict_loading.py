"""Refuse a checkpoint that does not match the model where a user expects an exact match
(``tools/test.py``, ``tools/train.py --resume``).

mmengine's ``Runner.load_checkpoint`` loads with ``strict=False``: missing, unexpected and
mismatched-shape keys are only logged, so a test with a wrong checkpoint evaluates partly random
layers and exits 0. :func:`require_matching_checkpoint` makes a runner compare the checkpoint's
state dict with the model's first and raise :class:`CheckpointMismatchError` naming the first
keys of each kind.
"""
import re
import types
from collections import OrderedDict
from typing import Dict, List, Tuple

from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model

#: How many keys of each kind the error names.
SHOWN_KEYS = 3


class CheckpointMismatchError(ValueError):
    """A checkpoint's state dict has missing, unexpected or differently shaped keys."""


def model_state_dict(checkpoint, revise_keys=((r'^module.', ''), )) -> Dict:
    """The state dict ``_load_checkpoint_to_model`` would load (``state_dict`` unwrapped,
    ``revise_keys`` applied: by default a DDP ``module.`` prefix dropped, as mmengine does)."""
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint,
                                                                        dict) else checkpoint
    for pattern, replacement in revise_keys:
        state_dict = OrderedDict(
            (re.sub(pattern, replacement, key), value) for key, value in state_dict.items())
    return state_dict


def _listing(keys: List[str], kind: str) -> str:
    shown = ', '.join(keys[:SHOWN_KEYS])
    more = f', ... ({len(keys) - SHOWN_KEYS} more)' if len(keys) > SHOWN_KEYS else ''
    return f'{len(keys)} {kind} ({shown}{more})'


def checkpoint_mismatch(model, state_dict: Dict) -> Tuple[List[str], List[str], List[str]]:
    """Missing keys, unexpected keys and shape mismatches (``'key: checkpoint (a, b), model
    (c, d)'``) of ``state_dict`` against ``model.state_dict()``, each in the model's / the
    checkpoint's order."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    shapes = []
    for key, value in state_dict.items():
        if key in expected and hasattr(value, 'shape') and \
                tuple(value.shape) != tuple(expected[key].shape):
            shapes.append(f'{key}: checkpoint {tuple(value.shape)}, model '
                          f'{tuple(expected[key].shape)}')
    return missing, unexpected, shapes


def check_checkpoint_matches(model, checkpoint, filename: str,
                             revise_keys=((r'^module.', ''), ),
                             opt_out: str = '--allow-partial-checkpoint') -> None:
    """Raise :class:`CheckpointMismatchError` unless ``checkpoint`` holds exactly the model's
    keys with the model's shapes.

    Args:
        model (nn.Module): The (unwrapped) model.
        checkpoint (dict): The loaded checkpoint (or a bare state dict).
        filename (str): Named in the message.
        revise_keys: As for ``Runner.load_checkpoint``.
        opt_out (str): The flag the message names for loading anyway.
    """
    missing, unexpected, shapes = checkpoint_mismatch(model,
                                                      model_state_dict(checkpoint, revise_keys))
    problems = [_listing(keys, kind) for keys, kind in (
        (missing, 'missing keys'), (unexpected, 'unexpected keys'), (shapes, 'shape mismatches'))
        if keys]
    if problems:
        raise CheckpointMismatchError(
            f'checkpoint {filename} does not match the model: {"; ".join(problems)}. Check the '
            f'config and the checkpoint; pass {opt_out} to load the matching part anyway.')


def require_matching_checkpoint(runner, opt_out: str = '--allow-partial-checkpoint') -> None:
    """Make ``runner.load_checkpoint`` (used by ``load_from`` and by ``resume``) refuse a
    checkpoint that does not match the model, before loading any of it.

    The instance's ``load_checkpoint`` is replaced by mmengine's steps (load, the
    ``after_load_checkpoint`` hooks, load into the model) with
    :func:`check_checkpoint_matches` before the last one.

    Args:
        runner (mmengine.runner.Runner): Built, not yet run.
        opt_out (str): The command-line flag that turns this off (named in the error).
    """

    def load_checkpoint(self, filename: str, map_location='cpu', strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]):
        checkpoint = _load_checkpoint(filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        check_checkpoint_matches(model, checkpoint, filename, revise_keys, opt_out)
        checkpoint = _load_checkpoint_to_model(model, checkpoint, strict,
                                               revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename} (all keys and shapes match)')
        return checkpoint

    runner.load_checkpoint = types.MethodType(load_checkpoint, runner)
