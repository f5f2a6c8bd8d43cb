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
from typing import Dict, List

import torch
import torch.nn as nn
from torch.nn.modules.module import _IncompatibleKeys


class PlainView:
    """``state_dict`` / ``load_state_dict`` over the pre-injection keys of ``root``.

    Args:
        root (nn.Module): The plain backbone, before any wrapper is installed.
        name (str): What it is, for messages (e.g. ``'SwinTransformer'``).
    """

    def __init__(self, root: nn.Module, name: str):
        self.name = name
        self.tensors: Dict[str, torch.Tensor] = dict(root.state_dict(keep_vars=True))

    def state_dict(self) -> Dict[str, torch.Tensor]:
        return {k: v.detach() for k, v in self.tensors.items()}

    def load_state_dict(self, state: Dict[str, torch.Tensor], strict: bool = True):
        """Copy ``state`` into the recorded tensors (in place: wrappers and optimizers keep
        them). Shapes must match (the loaders check them first and name the file)."""
        missing = sorted(set(self.tensors) - set(state))
        unexpected = sorted(set(state) - set(self.tensors))
        if strict and (missing or unexpected):
            raise RuntimeError(f'{self.name}: missing keys {missing}, unexpected keys '
                               f'{unexpected}')
        with torch.no_grad():
            for key, value in state.items():
                if key in self.tensors:
                    self.tensors[key].copy_(value)
        return _IncompatibleKeys(missing, unexpected)

    def forget(self, prefixes: List[str]) -> None:
        """Drop the recorded tensors under ``prefixes`` (the replaced MLPs' old linears, once
        loaded and copied), so that they are freed."""
        self.tensors = {k: v for k, v in self.tensors.items()
                        if not any(k.startswith(p + '.') for p in prefixes)}
