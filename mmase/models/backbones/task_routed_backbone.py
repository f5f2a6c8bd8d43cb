"""TaskRoutedBackbone: ASE's task-routed LoRA experts around any mmseg transformer backbone.

The mmseg backbone (``SwinTransformer``, ``MixVisionTransformer``, ``VisionTransformer``, or
another with a registered layout, :mod:`.transformer_layouts`) is built from its own config,
initialised as mmseg does, loaded from a local checkpoint in mmseg's format with a strict key
check (:mod:`.mmseg_loading`) and frozen. Then, in this order:

1. ``experts``: ASE's ``(N/k/S/r)`` LoRA experts with one router per task beside every FFN
   the wrapper recognises in the chosen stages (mmcv ``FFN``, SegFormer ``MixFFN``; see
   :mod:`.ffn_discovery` for where their sum lands: inside the residual branch, once);
2. ``lora``: plain LoRA (shared by all tasks) on the attention projections ``qkv``/``proj``;
3. ``task_embedding``: a learnable, zero-initialised ``e_t`` per task added to the tokens where
   the first stage's tokens are formed (a forward hook on the layout's ``token_module``: Swin
   and ViT after the patch embedding, position embedding and its dropout; MiT after the first
   stage's patch embedding).

mmseg's modules call their FFNs with the tokens only, so the task index reaches the wrapped
layers through a :class:`.task_context.TaskContext` set around the inner backbone's call:
an int, or a LongTensor ``(N,)`` per sample in the batched multi-task pass (the FFN of every
family sees ``(N, L, C)`` tokens or ``(N, C, H, W)`` maps with ``N`` the batch; Swin's window
attention sees windows, which only plain LoRA touches and which needs no task).

Running several tasks, the router losses (``loss_lb_<task>``, ``loss_mi``) and the routing
statistics are :class:`.multitask_pass.MultiTaskPassMixin`'s, as for ASEViT. The mixin's stem
(``_embed``) cannot be split off a foreign backbone, so here it only flattens the images to
``(N, 3, H*W)`` (so the batched pass can repeat them per task) and ``_encode`` runs the whole
inner backbone (ours).

Follows Li et al., 2025 (ASE, arXiv 2510.00570), Sec. 3 for the experts, routers, task
embeddings and losses; wrapping Swin / MiT / mmseg's ViT is ours.
"""
import copy
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from mmase.models.task_names import check_task_names
from ..adapters import LoRAExperts, MoELoRAFFN, MoELoRALinear, check_moe_lora_args
from ..adapters.lora import LoRAMultiheadAttention
from ..config_fields import check_router_loss_weights, constant_gates_reason, with_defaults
from .ffn_discovery import (describe_attention_types, describe_ffn_types, find_attentions,
                            find_ffns, ffn_width)
from .mmseg_loading import load_mmseg_backbone
from .multitask_pass import MULTITASK_MODES, MultiTaskPassMixin
from .task_context import TaskContext
from .transformer_layouts import layout_for

#: Defaults of the ``experts`` dict: the paper's ASE 16/3/1/4 beside every FFN.
EXPERTS_DEFAULTS = dict(num_experts=16, top_k=3, num_shared=1, rank=4, alpha=None,
                        shared_gating='adaptive', stages=None, active_experts=None,
                        load_balance_weight=0.0, mi_loss_weight=0.0)

#: Defaults of the ``lora`` dict: plain LoRA of rank 4 on the attention projections.
LORA_DEFAULTS = dict(rank=4, alpha=None, targets=('qkv', 'proj'), stages=None)

LORA_TARGETS = ('qkv', 'proj')


@MODELS.register_module()
class TaskRoutedBackbone(MultiTaskPassMixin, BaseModule):
    """A frozen mmseg transformer backbone with ASE experts beside its FFNs.

    Args:
        backbone (dict): Config of the mmseg backbone, e.g. ``dict(type='SwinTransformer',
            embed_dims=96, depths=(2, 2, 6, 2), ...)``. Its weights come from
            ``init_cfg=dict(type='Pretrained', checkpoint=PATH)`` or ``pretrained=PATH`` (a
            local file in mmseg's format, or the original Swin / SegFormer release, converted
            as mmseg's converters do), loaded here with a strict key check; without one it is
            initialised as mmseg does.
        tasks (Sequence[str]): Task names; one router (and task embedding) per task, in order.
        experts (dict | None): ASE experts beside each FFN, in the paper's ``(N/k/S/r)``.
            Keys (defaults): ``num_experts`` (16, shared included), ``top_k`` (3),
            ``num_shared`` (1), ``rank`` (4), ``alpha`` (None = rank), ``shared_gating``
            ('adaptive' | 'fixed' | 'none'), ``stages`` (None = all, or stage indices),
            ``active_experts`` (None, or a stated ``k + S`` to check), ``load_balance_weight``
            (0.0), ``mi_loss_weight`` (0.0). None: no experts.
        lora (dict | None): Plain LoRA on the attention projections. Keys (defaults): ``rank``
            (4), ``alpha`` (None), ``targets`` (('qkv', 'proj')), ``stages`` (None = all).
            None: none.
        task_embedding (bool | Sequence[str]): A zero-initialised ``e_t`` per task (True) or for
            the named tasks, added to the first stage's tokens. Default: True.
        multitask_mode (str): ``'batched'`` | ``'sequential'`` (see
            :meth:`~.multitask_pass.MultiTaskPassMixin.forward_tasks`). Default: 'batched'.
        record_routing (bool): Record routing statistics. Default: False.
        init_cfg (dict, optional): Must be None: the inner backbone's weights are set here.

    Forward: ``(N, 3, H, W)`` -> the inner backbone's outputs as a tuple (Swin, MiT: one map
    per ``out_indices`` stage, widths per stage; ViT: per ``out_indices`` layer).

    Attributes:
        expert_names (list[str]): The wrapped FFN branches (``<ffn>.layers``), also logged.
        lora_names (list[str]): The attention modules / linears that got plain LoRA.
    """

    def __init__(self,
                 backbone: dict,
                 tasks: Sequence[str] = ('semseg', ),
                 experts: Optional[dict] = dict(),
                 lora: Optional[dict] = dict(),
                 task_embedding: Union[bool, Sequence[str]] = True,
                 multitask_mode: str = 'batched',
                 record_routing: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=None)
        if init_cfg is not None:
            raise ValueError('init_cfg of TaskRoutedBackbone must be None: set the inner '
                             "backbone's weights with backbone.init_cfg=dict(type='Pretrained', "
                             'checkpoint=...)')
        self.tasks = check_task_names(tasks, 'tasks')
        if multitask_mode not in MULTITASK_MODES:
            raise ValueError(f'multitask_mode={multitask_mode!r} is not one of {MULTITASK_MODES}')
        self.multitask_mode = multitask_mode
        self.experts_cfg = self._parse_experts(experts)
        self.lora_cfg = self._parse_lora(lora)
        self.task_embedding_tasks = self._parse_task_embedding(task_embedding)

        # 1. the plain mmseg backbone, its own init, then the checkpoint (strict)
        inner_cfg, checkpoint, field = self._pop_pretrained(backbone)
        self.backbone = MODELS.build(inner_cfg)
        self.backbone.init_weights()
        ffns = find_ffns(self.backbone)
        if self.experts_cfg is not None and not ffns:
            raise ValueError(f'backbone.type={inner_cfg["type"]!r} has no FFN the wrapper '
                             f'recognises ({describe_ffn_types()}); nothing to place experts '
                             f'beside')
        self.layout = layout_for(self.backbone)
        if checkpoint is not None:
            load_mmseg_backbone(self.backbone, self.layout, checkpoint, field)
        for param in self.backbone.parameters():
            param.requires_grad_(False)

        # 2. experts beside the FFNs, 3. LoRA on attention, 4. task embeddings
        self._context = TaskContext()
        num_stages = self.layout.num_stages()
        for key, cfg in (('experts', self.experts_cfg), ('lora', self.lora_cfg)):
            if cfg is not None:
                cfg['stages'] = self._parse_stages(cfg['stages'], f'{key}.stages', num_stages)
        self.expert_names = self._insert_experts(ffns, record_routing)
        self.lora_names = self._insert_lora()
        self._insert_task_embedding()
        print_log(f'TaskRoutedBackbone({self.layout.name}): experts beside '
                  f'{len(self.expert_names)} FFNs {self.expert_names}; plain LoRA on '
                  f'{len(self.lora_names)} attention modules {self.lora_names}',
                  logger='current')

        cfg = self.experts_cfg or {}
        self.routing_families = [
            dict(suffix='', names=[f'backbone.{n}' for n in self.expert_names],
                 load_balance_weight=float(cfg.get('load_balance_weight', 0.0)),
                 mi_loss_weight=float(cfg.get('mi_loss_weight', 0.0)))
        ]
        self._init_multitask_pass(record_routing)
        self._trainable_names = self._select_trainable()
        self._apply_freeze()

    # ------------------------------------------------------------------------------------------
    # what was wrapped
    @property
    def wrapped_names(self) -> List[str]:
        """Every wrapped module, relative to the inner backbone: experts' FFN branches, then
        the attention modules / linears with plain LoRA."""
        return self.expert_names + self.lora_names

    @property
    def task_agnostic(self) -> bool:
        """No router and no task embedding: every task gets the same features (one pass)."""
        return self.task_embed is None and all(
            m.router is None for m in self.modules() if isinstance(m, LoRAExperts))

    # ------------------------------------------------------------------------------------------
    # insertion
    def _insert_experts(self, ffns, record_routing: bool) -> List[str]:
        cfg = self.experts_cfg
        if cfg is None:
            return []
        names = []
        for name, ffn, channels_first in ffns:
            if self.layout.stage_of(name) not in cfg['stages']:
                continue
            width = ffn_width(ffn)
            layer = MoELoRAFFN(
                ffn.layers, in_features=width, out_features=width,
                channels_first=channels_first, task_source=self._context.current,
                num_tasks=len(self.tasks), num_experts=cfg['num_experts'], top_k=cfg['top_k'],
                num_shared=cfg['num_shared'], rank=cfg['rank'], alpha=cfg['alpha'],
                shared_gating=cfg['shared_gating'],
                load_balance=cfg['load_balance_weight'] > 0,
                mutual_information=cfg['mi_loss_weight'] > 0, record_routing=record_routing)
            ffn.layers = layer
            names.append(f'{name}.layers')
        if not names:
            raise ValueError(f"experts.stages={cfg['stages']} holds no FFN of "
                             f'{self.layout.name}')
        return names

    def _insert_lora(self) -> List[str]:
        cfg = self.lora_cfg
        if cfg is None:
            return []
        names = []
        lora = dict(rank=cfg['rank'], alpha=cfg['alpha'])
        for name, module, kind in find_attentions(self.backbone):
            if self.layout.stage_of(name) not in cfg['stages']:
                continue
            if kind == 'packed':
                parent_name, _, child = name.rpartition('.')
                parent = self.backbone.get_submodule(parent_name)
                setattr(parent, child, LoRAMultiheadAttention(module, targets=cfg['targets'],
                                                              **lora))
                names.append(name)
                continue
            for target in cfg['targets']:
                linear = getattr(module, target)
                setattr(module, target, MoELoRALinear(
                    linear, num_tasks=1, num_experts=1, top_k=1, num_shared=0,
                    shared_gating='none', **lora))
                names.append(f'{name}.{target}')
        if not names:
            raise ValueError(f"lora: {self.layout.name} has no attention the wrapper recognises "
                             f"({describe_attention_types()}) in lora.stages={cfg['stages']}")
        return names

    def _insert_task_embedding(self) -> None:
        chosen = self.task_embedding_tasks
        if not chosen:
            self.task_embed = None
            return
        self.task_embed = nn.Parameter(torch.zeros(len(chosen), self.layout.token_dims()))
        rows = [chosen.index(t) if t in chosen else len(chosen) for t in self.tasks]
        self.register_buffer('_task_embed_row', torch.tensor(rows), persistent=False)
        try:
            module = self.backbone.get_submodule(self.layout.token_module)
        except AttributeError:
            raise ValueError(f'{self.layout.name} has no module {self.layout.token_module!r} '
                             f'where its layout forms the tokens') from None
        module.register_forward_hook(self._add_task_embedding)

    def _add_task_embedding(self, module, args, output):
        """Forward hook: ``x_t = x + e_t`` on the first stage's tokens ``(N, L, C)``."""
        tokens = output[0] if isinstance(output, tuple) else output
        table = torch.cat([self.task_embed, self.task_embed.new_zeros(1, tokens.shape[-1])])
        embedding = table[self._task_embed_row[self._context.current()]]
        tokens = tokens + (embedding.view(1, 1, -1) if embedding.dim() == 1
                           else embedding[:, None])
        return (tokens, *output[1:]) if isinstance(output, tuple) else tokens

    # ------------------------------------------------------------------------------------------
    # freezing and init
    def _select_trainable(self) -> set:
        """Experts, routers and LoRA (every ``LoRAExperts`` but a base layer), task embeddings."""
        selected = set()
        for module_name, module in self.named_modules():
            if isinstance(module, LoRAExperts):
                selected.update(f'{module_name}.{p}' for p, _ in module.named_parameters()
                                if not p.startswith('base_layer.'))
        if self.task_embed is not None:
            selected.add('task_embed')
        return selected

    def _apply_freeze(self) -> None:
        for name, param in self.named_parameters():
            param.requires_grad_(name in self._trainable_names)

    def train(self, mode: bool = True):
        """Set the mode and re-apply the freezing (mmseg's ``train`` may unfreeze stages)."""
        super().train(mode)
        self._apply_freeze()
        return self

    def init_weights(self) -> None:
        """Nothing to do: the inner backbone was initialised (and loaded) at construction, and
        running mmseg's init again would overwrite the checkpoint (and the wrapped layers'
        base weights). The experts initialise themselves (``B = 0``)."""
        self._is_init = True

    # ------------------------------------------------------------------------------------------
    # the two halves of a forward (composed by MultiTaskPassMixin)
    def _embed(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        if inputs.dim() != 4:
            raise ValueError(f'inputs must be (N, C, H, W), got shape {tuple(inputs.shape)}')
        return inputs.flatten(2), tuple(inputs.shape[2:])

    def _encode(self, x: torch.Tensor, grid: Tuple[int, int], task) -> Tuple[torch.Tensor]:
        images = x.reshape(x.shape[0], x.shape[1], *grid)
        with self._context.use(task):
            outs = self.backbone(images)
        return tuple(outs)

    # ------------------------------------------------------------------------------------------
    # config parsing
    def _parse_experts(self, experts: Optional[dict]) -> Optional[dict]:
        if experts is None:
            return None
        cfg = with_defaults(experts, EXPERTS_DEFAULTS, 'experts')
        check_moe_lora_args(cfg['num_experts'], cfg['top_k'], cfg['num_shared'], cfg['rank'],
                            cfg['shared_gating'], cfg['alpha'], prefix='experts.',
                            active_experts=cfg['active_experts'])
        check_router_loss_weights(cfg, 'experts.', constant_gates_reason(cfg))
        return cfg

    def _parse_lora(self, lora: Optional[dict]) -> Optional[dict]:
        if lora is None:
            return None
        cfg = with_defaults(lora, LORA_DEFAULTS, 'lora')
        check_moe_lora_args(1, 1, 0, cfg['rank'], 'none', cfg['alpha'], prefix='lora.')
        targets = (cfg['targets'], ) if isinstance(cfg['targets'], str) else tuple(cfg['targets'])
        unknown = [t for t in targets if t not in LORA_TARGETS]
        if unknown or not targets or len(set(targets)) != len(targets):
            raise ValueError(f'lora.targets={targets} must name some of {LORA_TARGETS}, once')
        cfg['targets'] = targets
        return cfg

    def _parse_task_embedding(self, task_embedding) -> Tuple[str, ...]:
        if isinstance(task_embedding, bool):
            return self.tasks if task_embedding else ()
        if isinstance(task_embedding, str) or not isinstance(task_embedding, (list, tuple)):
            raise TypeError(f'task_embedding must be True, False or a list of task names, got '
                            f'{task_embedding!r}')
        check_task_names(task_embedding, 'task_embedding', self.tasks)
        return tuple(t for t in self.tasks if t in task_embedding)

    @staticmethod
    def _parse_stages(stages, field: str, num_stages: int) -> Tuple[int, ...]:
        if stages is None:
            return tuple(range(num_stages))
        stages = (stages, ) if isinstance(stages, int) else tuple(stages)
        if not stages:
            raise ValueError(f'{field} is empty; give None (all stages) or stage indices')
        for index in stages:
            if isinstance(index, bool) or not isinstance(index, int) or \
                    not 0 <= index < num_stages:
                raise ValueError(f'{field}: {index!r} is not a stage of this backbone '
                                 f'({num_stages} stage(s): 0..{num_stages - 1})')
        return tuple(sorted(set(stages)))

    @staticmethod
    def _pop_pretrained(backbone: dict) -> Tuple[dict, Optional[str], str]:
        """The inner config without its checkpoint, the checkpoint path, the field naming it."""
        if not isinstance(backbone, dict) or 'type' not in backbone:
            raise TypeError('backbone must be an mmseg backbone config dict with a type')
        cfg = copy.deepcopy(dict(backbone))
        pretrained = cfg.pop('pretrained', None)
        init_cfg = cfg.pop('init_cfg', None)
        if pretrained is not None and init_cfg is not None:
            raise ValueError('backbone.pretrained and backbone.init_cfg are both set; give one')
        if pretrained is not None:
            if not isinstance(pretrained, str):
                raise TypeError(f'backbone.pretrained must be a path, got {pretrained!r}')
            return cfg, pretrained, 'backbone.pretrained'
        if init_cfg is not None:
            if not isinstance(init_cfg, dict) or init_cfg.get('type') != 'Pretrained' or \
                    not isinstance(init_cfg.get('checkpoint'), str):
                raise ValueError(f"backbone.init_cfg={init_cfg!r}: only dict(type='Pretrained', "
                                 f'checkpoint=PATH) is supported here')
            return cfg, init_cfg['checkpoint'], 'backbone.init_cfg.checkpoint'
        return cfg, None, 'backbone.init_cfg.checkpoint'
