"""Wrap named linear layers of a built model with adapters (PEFT style: wrap, never own).

The model is built plain (so its parameter names match pretrained checkpoints); this walks it
and replaces the named ``nn.Linear`` submodules by ``factory(name, linear)``, which is expected
to keep the linear as its ``base_layer``.
"""
from typing import Callable, Iterable, List

import torch.nn as nn


def wrap_linears(root: nn.Module, names: Iterable[str],
                 factory: Callable[[str, nn.Linear], nn.Module]) -> List[str]:
    """Replace each named linear of ``root`` by ``factory(name, linear)``.

    Args:
        root (nn.Module): Model to modify in place.
        names (Iterable[str]): Dotted submodule names, e.g. ``'blocks.0.attn.qkv'``.
        factory (Callable): ``(name, linear) -> nn.Module`` building the wrapper.

    Returns:
        list[str]: The wrapped names, in the given order.
    """
    wrapped = []
    for name in names:
        parent_name, _, child = name.rpartition('.')
        try:
            parent = root.get_submodule(parent_name) if parent_name else root
            layer = getattr(parent, child)
        except AttributeError:
            raise KeyError(f'no submodule named {name!r} to wrap') from None
        if not isinstance(layer, nn.Linear):
            raise TypeError(f'{name!r} is a {type(layer).__name__}, not an nn.Linear '
                            f'(already wrapped?)')
        setattr(parent, child, factory(name, layer))
        wrapped.append(name)
    return wrapped
