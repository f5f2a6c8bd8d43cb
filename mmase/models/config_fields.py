"""Checks of the config dicts the models take (``adapter=``, ``experts=``, ``lora=``,
``mlp_moe=``): one wording of each error, naming the field."""
from typing import Mapping, Optional

from .adapters.moe_lora import has_router

#: The router losses a routed layer's config may weight (``loss_lb_*``, ``loss_mi``).
ROUTER_LOSS_WEIGHTS = ('load_balance_weight', 'mi_loss_weight')


def with_defaults(cfg, defaults: Mapping, field: str) -> dict:
    """``{**defaults, **cfg}`` after checking that ``cfg`` is a dict with known keys only."""
    if not isinstance(cfg, dict):
        raise TypeError(f'{field} must be a dict or None, got {type(cfg).__name__}')
    unknown = sorted(set(cfg) - set(defaults))
    if unknown:
        raise ValueError(f'{field}: unknown keys {unknown}; known keys are {sorted(defaults)}')
    return {**defaults, **cfg}


def check_loss_weight(weight, field: str) -> None:
    """A loss weight is a number >= 0 (not a bool)."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
        raise ValueError(f'{field}={weight!r} must be a number >= 0')


def check_router_loss_weights(cfg: Mapping, prefix: str,
                              constant_gates: Optional[str] = None) -> None:
    """Check ``cfg``'s :data:`ROUTER_LOSS_WEIGHTS`; ``constant_gates``: why the layer has no
    router (None: it has one), then a weight > 0 is an error saying so."""
    for key in ROUTER_LOSS_WEIGHTS:
        weight = cfg[key]
        check_loss_weight(weight, f'{prefix}{key}')
        if weight > 0 and constant_gates is not None:
            raise ValueError(f'{prefix}{key}={weight} needs a router, but {constant_gates}')


def constant_gates_reason(cfg: Mapping) -> Optional[str]:
    """Why a LoRA-MoE config (``num_experts``, ``num_shared``, ``shared_gating``) builds no
    router, or None when it builds one (for :func:`check_router_loss_weights`)."""
    if has_router(cfg['num_experts'], cfg['num_shared'], cfg['shared_gating']):
        return None
    return (f"with num_experts={cfg['num_experts']}, num_shared={cfg['num_shared']} and "
            f"shared_gating={cfg['shared_gating']!r} the gates are constant and no router is "
            f'built')
