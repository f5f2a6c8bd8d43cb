"""The backbone as its pretrained checkpoints know it: its keys from before the injection.

Adapters wrap by reference (PEFT style), so every base parameter survives the injection as the
same tensor, under a new name (``attn.qkv.weight`` -> ``attn.qkv.base_layer.weight``) or the
same one (an FFN's children adopted by :class:`~mmase.models.adapters.MoELoRAFFN`). A
:class:`PlainView` records the pre-injection ``state_dict`` keys and their tensors, so that the
family's strict loader reads and writes the wrapped backbone as if it were plain: weights load
at ``init_weights()`` (OpenMMLab's convention), after the model, its wrappers and the optimizer
exist. An MLP replaced by an FFN-level expert layer keeps its old linears here (only while a
pretrained file is still to load), so that the layer can be rebuilt from the loaded ones.
"""
from typing import Dict

import torch
import torch.nn as nn
from torch.nn.modules.module import _IncompatibleKeys


class PlainView:
    """``state_dict`` / ``load_state_dict`` over the pre-injection keys of ``root``.

    The keys are resolved to the wrapped model's tensors when loading (not held from build):
    moving a model (``.to(device)``) replaces its buffers, so a tensor held since the build
    would be a stale copy. Only the replaced MLPs' linears, which leave the model, are held.

    Args:
        root (nn.Module): The plain backbone, before any wrapper is installed.
        name (str): What it is, for messages (e.g. ``'SwinTransformer'``).
    """

    def __init__(self, root: nn.Module, name: str):
        self.name = name
        self.root = root
        self.tensors: Dict[str, torch.Tensor] = dict(root.state_dict(keep_vars=True))
        self.current: Dict[str, str] = {}

    def bind(self) -> None:
        """After the injection: each pre-injection key -> its name in the wrapped model (the
        same tensor object); tensors that left the model stay held."""
        plain_key = {id(t): k for k, t in self.tensors.items()}
        live = self.root.state_dict(keep_vars=True)
        self.current = {plain_key[id(t)]: k for k, t in live.items() if id(t) in plain_key}
        self.tensors = {k: t for k, t in self.tensors.items() if k not in self.current}

    def _resolve(self) -> Dict[str, torch.Tensor]:
        live = self.root.state_dict(keep_vars=True)
        return {**{k: live[c] for k, c in self.current.items()}, **self.tensors}

    def state_dict(self) -> Dict[str, torch.Tensor]:
        return {k: v.detach() for k, v in self._resolve().items()}

    def load_state_dict(self, state: Dict[str, torch.Tensor], strict: bool = True):
        """Copy ``state`` into the model's tensors (in place: wrappers and optimizers keep
        them). Shapes must match (the loaders check them first and name the file)."""
        tensors = self._resolve()
        missing = sorted(set(tensors) - set(state))
        unexpected = sorted(set(state) - set(tensors))
        if strict and (missing or unexpected):
            raise RuntimeError(f'{self.name}: missing keys {missing}, unexpected keys '
                               f'{unexpected}')
        with torch.no_grad():
            for key, value in state.items():
                if key in tensors:
                    tensors[key].copy_(value)
        return _IncompatibleKeys(missing, unexpected)
