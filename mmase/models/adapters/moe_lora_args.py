"""Checks of the ``(N/k/S/r)`` arguments of a routed LoRA layer, one wording naming the field
(``adapter.top_k=16 exceeds the sparse pool ...``), shared by the layers and the typed configs."""
from typing import Optional

GATING_MODES = ('adaptive', 'fixed', 'none')


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int_arg(name: str, value, low: int, prefix: str = '') -> None:
    """Raise unless ``value`` is an int (not a bool) ``>= low``; the message names
    ``{prefix}{name}``, e.g. ``'adapter.rank=0 must be >= 1'``."""
    if not _is_int(value):
        raise TypeError(f'{prefix}{name} must be an int, got {value!r}')
    if value < low:
        raise ValueError(f'{prefix}{name}={value} must be >= {low}')


def has_router(num_experts: int, num_shared: int, shared_gating: str) -> bool:
    """Whether ``(N/k/S/r)`` experts need a router: not with one sparse expert and no adaptively
    gated shared expert (e.g. plain LoRA ``1/1/0/r``), whose gates are the constant 1."""
    return not (num_experts - num_shared == 1
                and (num_shared == 0 or shared_gating == 'fixed'))


def check_moe_lora_args(num_experts: int, top_k: int, num_shared: int, rank: int,
                        shared_gating: str, alpha: Optional[float] = None,
                        prefix: str = '', active_experts: Optional[int] = None) -> None:
    """Validate an ``(N/k/S/r)`` expert configuration; errors name ``{prefix}{field}``.

    Args:
        num_experts (int): ``N``, experts per layer *including* the shared ones (>= 1).
        top_k (int): ``k``, sparse experts selected per token, ``1 <= k <= N - S``.
        num_shared (int): ``S``, always-active shared experts, ``0 <= S < N`` (0 when
            ``shared_gating='none'``).
        rank (int): ``r``, rank of every expert (>= 1).
        shared_gating (str): One of ``'adaptive'``, ``'fixed'``, ``'none'``.
        alpha (float, optional): LoRA scale numerator (> 0) or None.
        prefix (str): Prepended to field names in messages, e.g. ``'adapter.'``.
        active_experts (int, optional): A stated ``k + S`` to check against. Default: None.
    """
    for name, value, low in (('num_experts', num_experts, 1), ('top_k', top_k, 1),
                             ('num_shared', num_shared, 0), ('rank', rank, 1)):
        check_int_arg(name, value, low, prefix)
    if num_shared >= num_experts:
        raise ValueError(f'{prefix}num_shared={num_shared} leaves no sparse expert: '
                         f'{prefix}num_experts={num_experts} counts the shared experts too '
                         f'(the paper\'s N/k/S/r), so it must exceed num_shared')
    num_sparse = num_experts - num_shared
    if top_k > num_sparse:
        raise ValueError(f'{prefix}top_k={top_k} exceeds the sparse pool of {num_sparse} '
                         f'experts ({prefix}num_experts={num_experts} - '
                         f'{prefix}num_shared={num_shared})')
    if shared_gating not in GATING_MODES:
        raise ValueError(f'{prefix}shared_gating={shared_gating!r} is not one of {GATING_MODES}')
    if shared_gating == 'none' and num_shared > 0:
        raise ValueError(f"{prefix}shared_gating='none' has no shared experts but "
                         f'{prefix}num_shared={num_shared}; set num_shared=0 or choose '
                         f"'adaptive' / 'fixed'")
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, (int, float))
                              or alpha <= 0):
        raise ValueError(f'{prefix}alpha={alpha!r} must be a positive number (or None for '
                         f'alpha = rank)')
    if active_experts is not None:
        check_int_arg('active_experts', active_experts, 1, prefix)
        if active_experts != top_k + num_shared:
            raise ValueError(f'{prefix}active_experts={active_experts} does not match '
                             f'{prefix}top_k + {prefix}num_shared = {top_k} + {num_shared} = '
                             f'{top_k + num_shared}')
