"""Whether a model's parameters and buffers are all finite, before its state is saved."""
from typing import List, Mapping

import torch


def nonfinite_entries(state_dict: Mapping[str, torch.Tensor], limit: int = 5) -> List[str]:
    """Floating-point entries of ``state_dict`` holding NaN or inf, described as
    ``'<key> (<n> of <numel> values non-finite, e.g. inf)'``; at most ``limit`` of them, plus
    ``'... and <k> more'`` when there are more. Integer entries (``num_batches_tracked``) are
    finite by construction and skipped. Costs one pass over the tensors (a ViT-B: ~0.1 s on CPU).
    """
    found = []
    extra = 0
    for key, value in state_dict.items():
        if not (torch.is_tensor(value) and (value.is_floating_point() or value.is_complex())):
            continue
        finite = torch.isfinite(value)
        if bool(finite.all()):
            continue
        if len(found) >= limit:
            extra += 1
            continue
        bad = value[~finite]
        kind = 'nan' if bool(torch.isnan(bad[:1]).all()) else 'inf'
        found.append(f'{key} ({int(bad.numel())} of {value.numel()} values non-finite, '
                     f'e.g. {kind})')
    if extra:
        found.append(f'... and {extra} more')
    return found


def model_state(model) -> dict:
    """``model.state_dict()`` of ``model`` or of the module inside a DDP-style wrapper."""
    return getattr(model, 'module', model).state_dict()


def check_finite_state(model, when: str) -> None:
    """Raise ``FloatingPointError`` naming the non-finite parameters / buffers of ``model``.

    Args:
        model: An ``nn.Module`` (or a wrapper with ``.module``).
        when (str): What is about to happen, for the message (e.g. ``'saving iter_4.pth'``).
    """
    bad = nonfinite_entries(model_state(model))
    if bad:
        raise FloatingPointError(
            f'non-finite model state before {when}: {"; ".join(bad)}. Training stopped without '
            f'saving it, so the last checkpoint stays a finite one; resume from it with a lower '
            f'learning rate or loss weight.')
