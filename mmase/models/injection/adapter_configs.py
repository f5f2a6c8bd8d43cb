"""Typed adapter configs: one type per concept, validated in one place.

Config files keep writing dicts (``adapter=dict(num_experts=16, top_k=3, ...)``); the backbone
turns each into one of the frozen dataclasses below with :func:`parse_adapter_configs`, which
checks every field (errors name the config field, e.g. ``adapter.top_k``) before anything is
built. Every multi-task backbone takes the same keys with the same defaults:

==================  =====================================  ================================
key                 type                                   default
==================  =====================================  ================================
``adapter``         :class:`RoutedExpertsConfig` | None    ASE 16/3/1/4 beside every FFN
``lora``            :class:`LoRAConfig` | None             None (no plain LoRA)
``mlp_moe``         :class:`FFNExpertsConfig` | None       None (plain FFNs)
``task_embedding``  :class:`TaskEmbeddingConfig`           False (none)
==================  =====================================  ================================

``blocks`` (block indices, counted over the whole backbone) and ``stages`` (stage indices; a
plain ViT has one stage) select where an adapter goes, on every backbone family; ``None``
means all. Keys of the pre-redesign backbones give an error naming their new spelling
(:data:`RENAMED_KEYS`).

Follows Li et al., 2025 (ASE, arXiv 2510.00570), Sec. 3 for the ``(N/k/S/r)`` notation: ``N``
experts including the ``S`` shared ones, top-``k`` of the ``N - S`` sparse ones, rank ``r``.
"""
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Optional, Sequence, Tuple, Union

from mmseg.registry import MODELS

from ..adapters.moe_lora import check_moe_lora_args
from ..config_fields import check_router_loss_weights, constant_gates_reason, with_defaults
from ..task_names import check_task_names

#: Where routed experts sit: beside each block's FFN (the paper's) or on named linears.
PLACEMENTS = ('ffn', 'linear')
#: The linears a block exposes by name (every layout maps these to its own modules).
LINEAR_TARGETS = ('qkv', 'proj', 'fc1', 'fc2')
#: ``adapter.targets`` when ``placement='linear'`` and none are given.
LINEAR_PLACEMENT_TARGETS = LINEAR_TARGETS

#: Old spelling -> new one (the error names the new key).
RENAMED_KEYS = {'experts': 'adapter'}


def _blocks_or_stages(value, field_name: str) -> Optional[Tuple[int, ...]]:
    """None, an int or ints >= 0 -> None or a sorted tuple (range checks need the backbone:
    :meth:`~mmase.models.injection.layout.Layout.select_blocks`)."""
    if value is None:
        return None
    value = (value, ) if isinstance(value, int) else value
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f'{field_name}={value!r} must be None (all) or indices')
    for index in value:
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError(f'{field_name}: {index!r} is not an index')
    return tuple(value)


def _targets(value, field_name: str) -> Tuple[str, ...]:
    value = (value, ) if isinstance(value, str) else tuple(value)
    if not value:
        raise ValueError(f'{field_name} is empty; name at least one of {LINEAR_TARGETS}')
    for target in value:
        if target not in LINEAR_TARGETS:
            raise ValueError(f'{field_name}: unknown layer {target!r}; known layers are '
                             f'{LINEAR_TARGETS}')
    if len(set(value)) != len(value):
        raise ValueError(f'{field_name}={value} repeats a layer')
    return value


@dataclass(frozen=True)
class RoutedExpertsConfig:
    """Task-routed LoRA experts ``(N/k/S/r)``: one router per task and layer (``adapter``).

    ``placement='ffn'``: one expert set beside each block's FFN, ``y = x + FFN(x') + sum_i g_i
    B_i A_i x'`` (the paper's); ``'linear'``: one per named linear, ``y = W0 x + sum_i g_i B_i
    A_i x`` (``targets``). ``shared_gating``: 'adaptive' (ASE: one softmax over the selected
    sparse and the shared logits), 'fixed' (shared weight 1), 'none'. ``alpha`` None = rank.
    ``active_experts``: a stated ``k + S`` to check. Router losses: ``load_balance_weight``
    (Switch, ``loss_lb_<task>``), ``mi_loss_weight`` (Mod-Squad mutual information,
    ``loss_mi``); 0 = off.
    """
    num_experts: int = 16
    top_k: int = 3
    num_shared: int = 1
    rank: int = 4
    alpha: Optional[float] = None
    shared_gating: str = 'adaptive'
    placement: str = 'ffn'
    targets: Optional[Tuple[str, ...]] = None
    blocks: Optional[Tuple[int, ...]] = None
    stages: Optional[Tuple[int, ...]] = None
    active_experts: Optional[int] = None
    load_balance_weight: float = 0.0
    mi_loss_weight: float = 0.0

    FIELD = 'adapter'

    def __post_init__(self):
        f = self.FIELD
        if self.placement not in PLACEMENTS:
            raise ValueError(f'{f}.placement={self.placement!r} is not one of {PLACEMENTS}')
        check_moe_lora_args(self.num_experts, self.top_k, self.num_shared, self.rank,
                            self.shared_gating, self.alpha, prefix=f'{f}.',
                            active_experts=self.active_experts)
        if self.placement == 'ffn' and self.targets is not None:
            raise ValueError(f"{f}.targets={self.targets!r} is for placement='linear'; "
                             f"placement='ffn' puts one expert set beside each block's FFN "
                             f'(drop targets, or use the lora dict for plain LoRA on linears)')
        if self.placement == 'linear':
            object.__setattr__(self, 'targets', _targets(
                LINEAR_PLACEMENT_TARGETS if self.targets is None else self.targets,
                f'{f}.targets'))
        object.__setattr__(self, 'blocks', _blocks_or_stages(self.blocks, f'{f}.blocks'))
        object.__setattr__(self, 'stages', _blocks_or_stages(self.stages, f'{f}.stages'))
        check_router_loss_weights(self.__dict__, f'{f}.', constant_gates_reason(self.__dict__))

    def layer_kwargs(self, num_tasks: int, record_routing: bool) -> Dict[str, Any]:
        """Keyword arguments of :class:`~mmase.models.adapters.LoRAExperts` and its wrappers."""
        return dict(num_tasks=num_tasks, num_experts=self.num_experts, top_k=self.top_k,
                    num_shared=self.num_shared, rank=self.rank, alpha=self.alpha,
                    shared_gating=self.shared_gating,
                    load_balance=self.load_balance_weight > 0,
                    mutual_information=self.mi_loss_weight > 0, record_routing=record_routing)


@dataclass(frozen=True)
class LoRAConfig:
    """Plain LoRA shared by all tasks (no router) on named linears (``lora``): the paper's
    "LoRA applied to the backbone", rank 4 on the attention's ``qkv`` and ``proj``."""
    rank: int = 4
    alpha: Optional[float] = None
    targets: Tuple[str, ...] = ('qkv', 'proj')
    blocks: Optional[Tuple[int, ...]] = None
    stages: Optional[Tuple[int, ...]] = None

    FIELD = 'lora'

    def __post_init__(self):
        # plain LoRA is the 1/1/0/r expert configuration: the same checks name lora.rank/alpha
        check_moe_lora_args(1, 1, 0, self.rank, 'none', self.alpha, prefix='lora.')
        object.__setattr__(self, 'targets', _targets(self.targets, 'lora.targets'))
        object.__setattr__(self, 'blocks', _blocks_or_stages(self.blocks, 'lora.blocks'))
        object.__setattr__(self, 'stages', _blocks_or_stages(self.stages, 'lora.stages'))


@dataclass(frozen=True)
class FFNExpertsConfig:
    """FFN-level expert layers replacing the FFN of chosen blocks, built from its (pretrained)
    ``fc1``/``fc2`` (``mlp_moe``): FGMoE's fine-grained slices or Task-MoE's FFN experts.
    ``layer_type`` is the registered class; ``layer_args`` its own keys (its
    ``CONFIG_DEFAULTS``, checked by its ``check_config``)."""
    layer_type: type
    layer_args: Dict[str, Any] = field(default_factory=dict)
    blocks: Optional[Tuple[int, ...]] = None
    stages: Optional[Tuple[int, ...]] = None
    load_balance_weight: float = 0.0
    mi_loss_weight: float = 0.0

    FIELD = 'mlp_moe'
    OWN_KEYS = ('blocks', 'stages', 'load_balance_weight', 'mi_loss_weight')

    def build(self, fc1, fc2, act, num_tasks: int, record_routing: bool = False):
        """The expert layer built from an MLP's ``fc1``, ``fc2``, ``act`` (at injection, and
        again from the loaded MLP at ``init_weights``)."""
        return self.layer_type(fc1, fc2, act, num_tasks=num_tasks,
                               load_balance=self.load_balance_weight > 0,
                               mutual_information=self.mi_loss_weight > 0,
                               record_routing=record_routing, **self.layer_args)

    @classmethod
    def from_dict(cls, cfg: dict, hidden_dims: Optional[int]) -> 'FFNExpertsConfig':
        if not isinstance(cfg, dict):
            raise TypeError(f'mlp_moe must be a dict or None, got {type(cfg).__name__}')
        cfg = dict(cfg)
        if 'type' not in cfg:
            raise ValueError("mlp_moe: missing key 'type' (e.g. 'FGMoE' or 'TaskMoE')")
        layer_type = cfg.pop('type')
        layer_cls = MODELS.get(layer_type) if isinstance(layer_type, str) else layer_type
        if not isinstance(layer_cls, type) or not hasattr(layer_cls, 'CONFIG_DEFAULTS'):
            raise ValueError(f'mlp_moe.type={layer_type!r} is not a registered MLP expert '
                             f"layer (e.g. 'FGMoE', 'TaskMoE')")
        own = dict(blocks=None, stages=None, load_balance_weight=0.0, mi_loss_weight=0.0)
        known = {**own, **layer_cls.CONFIG_DEFAULTS}
        unknown = sorted(set(cfg) - set(known))
        if unknown:
            raise ValueError(f'mlp_moe: unknown keys {unknown} for {layer_cls.__name__}; known '
                             f"keys are {['type'] + sorted(known)}")
        cfg = {**known, **cfg}
        layer_args = {k: cfg[k] for k in layer_cls.CONFIG_DEFAULTS}
        if hidden_dims is not None:
            layer_cls.check_config(hidden_dims, prefix='mlp_moe.', **layer_args)
        check_router_loss_weights(cfg, 'mlp_moe.')
        return cls(layer_type=layer_cls, layer_args=layer_args,
                   blocks=_blocks_or_stages(cfg['blocks'], 'mlp_moe.blocks'),
                   stages=_blocks_or_stages(cfg['stages'], 'mlp_moe.stages'),
                   load_balance_weight=cfg['load_balance_weight'],
                   mi_loss_weight=cfg['mi_loss_weight'])


@dataclass(frozen=True)
class TaskEmbeddingConfig:
    """A learnable, zero-initialised ``e_t`` per task, added to every token where the layout
    forms the first stage's tokens (``x_t = x + e_t``), for the tasks named (``task_embedding``:
    True = all, False = none, or names)."""
    tasks: Tuple[str, ...] = ()

    @classmethod
    def from_value(cls, value: Union[bool, Sequence[str]],
                   tasks: Tuple[str, ...]) -> 'TaskEmbeddingConfig':
        if isinstance(value, bool):
            return cls(tasks if value else ())
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise TypeError(f'task_embedding must be True, False or a list of task names, got '
                            f'{value!r}')
        check_task_names(value, 'task_embedding', tasks)
        return cls(tuple(t for t in tasks if t in value))


@dataclass(frozen=True)
class AdapterConfigs:
    """Everything the injector puts into one backbone."""
    tasks: Tuple[str, ...]
    adapter: Optional[RoutedExpertsConfig]
    lora: Optional[LoRAConfig]
    mlp_moe: Optional[FFNExpertsConfig]
    task_embedding: TaskEmbeddingConfig

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)


def _from_dict(cls, cfg: Optional[dict]):
    if cfg is None:
        return None
    defaults = {f.name: f.default for f in fields(cls)}
    return cls(**with_defaults(cfg, defaults, cls.FIELD))


def parse_adapter_configs(tasks: Sequence[str], adapter: Optional[dict] = dict(),
                          lora: Optional[dict] = None, mlp_moe: Optional[dict] = None,
                          task_embedding: Union[bool, Sequence[str]] = False,
                          hidden_dims: Optional[int] = None) -> AdapterConfigs:
    """The typed configs of one backbone from its config dicts (defaults in the table above).

    Args:
        tasks (Sequence[str]): Task names; one router and task embedding row per task.
        adapter, lora, mlp_moe (dict | None): See the dataclasses.
        task_embedding (bool | Sequence[str]): See :class:`TaskEmbeddingConfig`.
        hidden_dims (int, optional): FFN hidden width, to check ``mlp_moe`` slicing early.
    """
    tasks = check_task_names(tasks, 'tasks')
    return AdapterConfigs(
        tasks=tasks, adapter=_from_dict(RoutedExpertsConfig, adapter),
        lora=_from_dict(LoRAConfig, lora),
        mlp_moe=None if mlp_moe is None else FFNExpertsConfig.from_dict(mlp_moe, hidden_dims),
        task_embedding=TaskEmbeddingConfig.from_value(task_embedding, tasks))


def check_renamed_keys(kwargs: dict, owner: str) -> None:
    """An old key (e.g. ``experts``) is an error naming its new spelling."""
    for old, new in RENAMED_KEYS.items():
        if old in kwargs:
            raise TypeError(f'{owner}: the key {old!r} is now spelled {new!r} (one spelling for '
                            f'every backbone); rename {old}= to {new}=')
