"""Wrap named submodules of a built model with adapters (PEFT style: wrap, never own).

The model is built plain (so its parameter names match pretrained checkpoints); this walks it
and replaces the named submodules by ``factory(name, module)``, which is expected to keep the
module as its base (``MoELoRALinear.base_layer``) or adopt its children under their own names
(``MoELoRAFFN``).
"""
from typing import Callable, Iterable, List, Tuple, Type, Union

import torch.nn as nn


def wrap_modules(root: nn.Module, names: Iterable[str],
                 factory: Callable[[str, nn.Module], nn.Module],
                 expected: Union[Type[nn.Module], Tuple[Type[nn.Module], ...]] = nn.Module
                 ) -> List[str]:
    """Replace each named submodule of ``root`` by ``factory(name, module)``.

    Args:
        root (nn.Module): Model to modify in place.
        names (Iterable[str]): Dotted submodule names, e.g. ``'blocks.0.attn.qkv'``.
        factory (Callable): ``(name, module) -> nn.Module`` building the wrapper.
        expected (type | tuple[type]): Class(es) every named module must be (e.g. an
            ``nn.Linear`` not yet wrapped). Default: any module.

    Returns:
        list[str]: The wrapped names, in the given order.

    Raises:
        KeyError: A name is not a submodule of ``root``.
        TypeError: A named module is not ``expected``.
    """
    wrapped = []
    for name in names:
        parent_name, _, child = name.rpartition('.')
        try:
            parent = root.get_submodule(parent_name) if parent_name else root
            module = getattr(parent, child)
        except AttributeError:
            raise KeyError(f'no submodule named {name!r} to wrap') from None
        if not isinstance(module, expected):
            kinds = expected if isinstance(expected, tuple) else (expected, )
            shown = ' or '.join(('nn.' if k.__module__.startswith('torch.nn') else '')
                                + k.__name__ for k in kinds)
            raise TypeError(f'{name!r} is a {type(module).__name__}, not an {shown} '
                            f'(already wrapped?)')
        setattr(parent, child, factory(name, module))
        wrapped.append(name)
    return wrapped


def wrap_linears(root: nn.Module, names: Iterable[str],
                 factory: Callable[[str, nn.Linear], nn.Module]) -> List[str]:
    """:func:`wrap_modules` for ``nn.Linear`` layers (a wrapped one is refused)."""
    return wrap_modules(root, names, factory, nn.Linear)
