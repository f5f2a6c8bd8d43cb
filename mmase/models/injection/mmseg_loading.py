"""Strict loading of a local checkpoint in mmseg's format into a plain mmseg backbone.

mmseg's configs name backbone weights as ``init_cfg=dict(type='Pretrained', checkpoint=...)``
(or the older ``pretrained=``) and mmseg loads them with ``strict=False``, silently keeping
whatever does not match. Here the same file goes through mmase's allowlisted reader
(:func:`~mmase.models.injection.state_files.read_state_dict`) and a strict key check: after
the prefixes mmseg strips (``backbone.`` of a segmentor checkpoint, ``module.``) and, for an
original release, mmseg's key conversion (:meth:`MMSegLayout.convert`), every key must
match except those the layout names as absent by design (a classifier's head, mmseg's output
norms); those are reported in the log. Anything else is an error naming the file.
"""
import re
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log

from .state_files import read_state_dict


def matching(patterns: Tuple[str, ...], keys) -> List[str]:
    """The keys matching one of ``patterns`` (``re.search``), sorted."""
    return sorted(k for k in keys if any(re.search(p, k) for p in patterns))


def _strip_prefixes(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    if any(k.startswith('backbone.') for k in state):  # a whole segmentor's checkpoint
        state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    if state and all(k.startswith('module.') for k in state):
        state = {k[len('module.'):]: v for k, v in state.items()}
    return state


def load_mmseg_backbone(backbone: nn.Module, layout, path: str,
                        field: str = 'backbone.init_cfg.checkpoint') -> None:
    """Load ``path`` into the plain (not yet wrapped) ``backbone`` with a strict key check.

    Args:
        backbone (nn.Module): An mmseg backbone as built from its config, or a
            :class:`~.plain_view.PlainView` of it after injection (its pre-injection keys).
        layout (MMSegLayout): Its layout (conversion, keys absent by design, resampling).
        path (str): Local checkpoint file (``.pth``/``.pt``/``.safetensors``).
        field (str): The config field that named the file (for messages).

    Raises:
        FileNotFoundError, ValueError: missing or unreadable file; missing / unexpected keys or
        mismatched shapes (all listed, naming the file): e.g. a checkpoint of another
        architecture.
    """
    state = _strip_prefixes(read_state_dict(path))
    state, converted = layout.convert(state)
    own = backbone.state_dict()
    dropped = matching(layout.may_drop, set(state) - set(own))
    state = {k: v for k, v in state.items() if k not in dropped}
    missing = sorted(set(own) - set(state))
    kept = matching(layout.may_miss, missing)
    missing = [k for k in missing if k not in kept]
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f'{field}={path} does not match this {layout.name}: missing keys '
                         f'{missing}, unexpected keys {unexpected}')
    state = layout.adapt(state, path)
    mismatched = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}'
                  for k, v in own.items() if k in state and state[k].shape != v.shape]
    if mismatched:
        raise ValueError(f'{field}={path} does not match this {layout.name}: shape mismatch '
                         f'in ' + '; '.join(mismatched))
    result = backbone.load_state_dict(state, strict=False)
    assert sorted(result.missing_keys) == kept and not result.unexpected_keys
    notes = [s for s in (
        'converted from the original release\'s key names' if converted else '',
        f'dropped {dropped}' if dropped else '',
        f'kept at init (absent from the checkpoint by design) {kept}' if kept else '') if s]
    print_log(f'{layout.name}: loaded {path}' + (f' ({"; ".join(notes)})' if notes else ''),
              logger='current')
