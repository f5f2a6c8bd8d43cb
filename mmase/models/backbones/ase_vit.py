"""ASEViT: a timm-named ViT with task-routed LoRA experts (ASE), plain LoRA and MLP experts.

Assembly only; the pieces live in their own modules: the plain ViT's blocks
(:mod:`.vit_layers`), strict timm loading (:mod:`.timm_loading`), the wrappers and the
injector (:mod:`mmase.models.adapters`), the multi-task pass and the collection of router
losses and statistics (:mod:`.multitask_pass`).

The ViT is built plainly (``patch_embed.proj``, ``cls_token``, ``pos_embed``,
``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``), so timm ViT state
dicts load with a strict key check. Then, in this order:

1. ``lora``: plain LoRA (shared by all tasks) on the named linears, by default the attention's
   ``qkv`` and ``proj`` (the paper's "LoRA applied to the backbone");
2. ``mlp_moe``: the MLPs of the chosen blocks become MLP-level expert layers built from the
   (pretrained) ``fc1``/``fc2``: :class:`~mmase.models.adapters.FGMoE` or
   :class:`~mmase.models.adapters.TaskMoE`;
3. ``adapter``: task-routed LoRA experts ``(N/k/S/r)``, beside each block's FFN
   (``placement='ffn'``, the paper's: :class:`~mmase.models.adapters.MoELoRAFFN`) or on the
   named linears (``placement='linear'``: :class:`~mmase.models.adapters.MoELoRALinear`);
4. ``task_embedding``: a learnable, zero-initialised embedding per task added to every token
   before the first block (``x_t = x + e_t``).

All base weights are frozen; experts, routers, LoRA, task embeddings, the trainable parts of
expert layers and the ``trainable`` name patterns train; ``frozen=True`` freezes everything.

Follows Li et al., 2025 (ASE, arXiv 2510.00570), Sec. 3: one router per task and block, top-k
sparse LoRA experts plus shared experts gated jointly with them ('adaptive'), the Mod-Squad
task-expert mutual-information loss on the routers.
"""
import re
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from timm.layers import trunc_normal_

from mmase.models.task_names import check_task_names
from ..adapters import (LoRAExperts, MoELoRAFFN, MoELoRALinear, check_moe_lora_args,
                        wrap_linears, wrap_modules)
from ..config_fields import check_router_loss_weights, constant_gates_reason, with_defaults
from .multitask_pass import MULTITASK_MODES, MultiTaskPassMixin
from .timm_loading import load_timm_vit
from .vit_layers import Block, PatchEmbed, parse_arch, resize_pos_embed, to_2tuple

#: Linear name -> submodule path inside a block.
TARGET_LAYERS = {'qkv': 'attn.qkv', 'proj': 'attn.proj', 'fc1': 'mlp.fc1', 'fc2': 'mlp.fc2'}

#: Where the routed experts sit: beside each block's FFN (the paper's) or on named linears.
PLACEMENTS = ('ffn', 'linear')

#: Defaults of the ``adapter`` dict: the paper's ASE 16/3/1/4 beside every FFN.
ADAPTER_DEFAULTS = dict(placement='ffn', num_experts=16, top_k=3, num_shared=1, rank=4,
                        alpha=None, shared_gating='adaptive', targets=None, blocks=None,
                        active_experts=None, load_balance_weight=0.0, mi_loss_weight=0.0)

#: ``adapter.targets`` when ``placement='linear'`` and none are given.
LINEAR_PLACEMENT_TARGETS = ('qkv', 'proj', 'fc1', 'fc2')

#: Defaults of the ``lora`` dict: plain LoRA of rank 4 on the attention linears.
LORA_DEFAULTS = dict(rank=4, alpha=None, targets=('qkv', 'proj'), blocks=None)

#: Keys of the ``mlp_moe`` dict handled by the backbone; the others go to the layer class
#: (its ``CONFIG_DEFAULTS``).
MLP_MOE_DEFAULTS = dict(blocks=None, load_balance_weight=0.0, mi_loss_weight=0.0)


@MODELS.register_module()
class ASEViT(MultiTaskPassMixin, BaseModule):
    """ViT backbone with task-routed LoRA mixture-of-experts (ASE).

    Args:
        arch (str | dict): ``'vit-t'`` (192 dims, 12 layers, 3 heads), ``'vit-s'`` (384, 12, 6),
            ``'vit-b'`` (768, 12, 12), ``'vit-l'`` (1024, 24, 16), or a dict with
            ``embed_dims``, ``num_layers``, ``num_heads`` and optional ``mlp_ratio`` (4).
            Default: ``'vit-s'``.
        img_size (int | tuple[int, int]): Training image size; fixes the position embedding
            grid ``img_size // patch_size``. Other sizes are resampled at forward. Default: 224.
        patch_size (int): Patch side in pixels. Default: 16.
        out_indices (int | Sequence[int]): Blocks whose outputs are returned (negative counts
            from the end). Default: -1 (the last block).
        tasks (Sequence[str]): Task names (``mmase.tasks``); one router per task, in order.
        adapter (dict | None): Task-routed LoRA experts in the paper's ``(N/k/S/r)``
            notation. Keys (defaults): ``placement`` ('ffn': one expert set and one router
            per task beside each block's FFN, ``y = x + FFN(x') + sum g_i B_i A_i x'``, the
            paper's; 'linear': one per named linear, ``y = W0 x + sum g_i B_i A_i x``);
            ``num_experts`` (16: ``N``, the shared experts included), ``top_k`` (3: ``k`` of
            the ``N - S`` sparse experts), ``num_shared`` (1: ``S``), ``rank`` (4: ``r``),
            ``alpha`` (None = rank, i.e. scale 1), ``shared_gating`` ('adaptive' (ASE) |
            'fixed' (naive shared expert, weight 1) | 'none'), ``targets`` (only for
            'linear'; default ('qkv', 'proj', 'fc1', 'fc2')), ``blocks`` (None = all blocks,
            or block indices), ``active_experts`` (None, or a stated ``k + S`` to check),
            ``load_balance_weight`` (0.0: off; Switch loss, ``loss_lb_<task>``),
            ``mi_loss_weight`` (0.0: off; Mod-Squad mutual information, ``loss_mi``).
            ``num_experts=1, top_k=1, num_shared=0`` is plain LoRA (no router). None: none.
        lora (dict | None): Plain LoRA shared by all tasks (no router). Keys (defaults):
            ``rank`` (4), ``alpha`` (None = rank), ``targets`` (('qkv', 'proj')), ``blocks``
            (None = all). Default: None.
        task_embedding (bool | Sequence[str]): A learnable embedding ``e_t`` per task (True),
            or for the named tasks only (the others add nothing), added to every token
            before the first block; zero-initialised. Default: False.
        mlp_moe (dict | None): MLP-level expert layers replacing the MLP of chosen blocks,
            built from its pretrained ``fc1``/``fc2``. Keys: ``type`` (``'FGMoE'`` |
            ``'TaskMoE'``, or any registered class with the same interface), ``blocks`` (None =
            all blocks, or block indices), ``load_balance_weight`` (0.0: off,
            ``loss_lb_mlp_<task>``), ``mi_loss_weight`` (0.0: off, ``loss_mi_mlp``), and the
            layer's own keys with their defaults: FGMoE ``num_experts`` (16 slices, shared
            ones included), ``top_k`` (6), ``num_shared`` (2), ``global_expert`` (True),
            ``task_specific_experts`` (True); TaskMoE ``num_experts`` (8), ``top_k`` (2),
            ``gating`` ('task_router' | 'task_embedding'), ``gate_norm`` ('topk' | 'all'),
            ``init_noise`` (0.0). Default: None (plain MLPs).
        pretrained (str, optional): Local path of a timm ViT state dict (``.pth``/``.pt`` or
            ``.safetensors``, optionally under a ``state_dict``/``model`` key). Keys must match
            the architecture exactly (the classifier ``head.*`` is dropped); ``pos_embed`` is
            resampled to the training grid. Default: None (timm-style random init).
        drop_path_rate (float): Stochastic depth rate, linearly increasing over blocks.
            Default: 0.
        final_norm (bool): Apply the final LayerNorm ``norm`` after the last block (so to the
            output of the last block when it is in ``out_indices``). Default: True.
        trainable (Sequence[str]): Regular expressions (``re.search`` on parameter names)
            of extra parameters to train, e.g. ``('norm', )``. Each must match something.
            Default: ().
        frozen (bool): Freeze the whole backbone, experts, expert layers, routers and task
            embeddings included (e.g. decoder-only fine-tuning of a model whose backbone was
            trained before and is loaded from a checkpoint). Needs ``trainable=()`` and no
            router loss. Default: False.
        multitask_mode (str): How :meth:`forward_tasks` runs several tasks through a
            task-conditioned backbone: ``'batched'`` (one pass with the batch repeated per
            task and a per-sample task index) or ``'sequential'`` (one pass per task). A
            task-agnostic backbone (no router, no task embedding) runs once for all tasks.
            Default: ``'batched'``.
        record_routing (bool): Record routing statistics (see :meth:`routing_stats`).
            Default: False.
        init_cfg (dict, optional): mmengine init config. Default: None.

    Forward: ``inputs`` ``(N, 3, H, W)`` normalised images -> tuple of ``(N, C, H/p, W/p)``.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'vit-s',
                 img_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: int = 16,
                 out_indices: Union[int, Sequence[int]] = -1,
                 tasks: Sequence[str] = ('semseg', ),
                 adapter: Optional[dict] = dict(),
                 lora: Optional[dict] = None,
                 task_embedding: Union[bool, Sequence[str]] = False,
                 mlp_moe: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 drop_path_rate: float = 0.0,
                 final_norm: bool = True,
                 trainable: Sequence[str] = (),
                 frozen: bool = False,
                 multitask_mode: str = 'batched',
                 record_routing: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        settings = parse_arch(arch)
        self.embed_dims = int(settings['embed_dims'])
        self.num_layers = int(settings['num_layers'])
        self.tasks = check_task_names(tasks, 'tasks')
        self.img_size = to_2tuple(img_size, 'img_size')
        if not isinstance(patch_size, int) or patch_size < 1:
            raise ValueError(f'patch_size={patch_size!r} must be a positive int')
        self.patch_size = patch_size
        self.grid_size = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        if min(self.grid_size) < 1:
            raise ValueError(f'img_size={self.img_size} is smaller than patch_size={patch_size}')
        self.out_indices = self._parse_out_indices(out_indices)
        if multitask_mode not in MULTITASK_MODES:
            raise ValueError(f'multitask_mode={multitask_mode!r} is not one of {MULTITASK_MODES}')
        self.multitask_mode = multitask_mode
        self.final_norm = final_norm
        # checked before any heavy work
        self.adapter_cfg = self._parse_adapter(adapter)
        self.lora_cfg = self._parse_lora(lora)
        self.mlp_hidden_dims = int(self.embed_dims * float(settings['mlp_ratio']))
        self.mlp_moe_cfg = self._parse_mlp_moe(mlp_moe)
        self.task_embedding_tasks = self._parse_task_embedding(task_embedding)
        self._check_layers_apart()
        self.frozen = self._parse_frozen(frozen, trainable)

        # 1. the plain ViT, timm names
        self.patch_embed = PatchEmbed(patch_size, self.embed_dims)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, 1 + self.grid_size[0] * self.grid_size[1], self.embed_dims))
        rates = torch.linspace(0, drop_path_rate, self.num_layers).tolist()
        self.blocks = nn.ModuleList([
            Block(self.embed_dims, int(settings['num_heads']), float(settings['mlp_ratio']), rate)
            for rate in rates
        ])
        self.norm = nn.LayerNorm(self.embed_dims, eps=1e-6)
        self._init_plain_weights()
        if pretrained is not None:
            load_timm_vit(self, pretrained, self.grid_size, self.embed_dims,
                          f'{self.embed_dims} dims, {self.num_layers} layers')

        # 2. plain LoRA, 3. MLP expert layers, 4. routed experts, 5. task embeddings
        self.lora_names = self._insert_lora()
        self.mlp_moe_names, layer_trainable = self._insert_mlp_moe(record_routing)
        self.adapter_names = self._insert_adapters(record_routing)
        self._insert_task_embedding()
        self.routing_families = [
            dict(suffix='', names=self.adapter_names,
                 load_balance_weight=self._family_weight(self.adapter_cfg, 'load_balance'),
                 mi_loss_weight=self._family_weight(self.adapter_cfg, 'mi_loss')),
            dict(suffix='_mlp', names=self.mlp_moe_names,
                 load_balance_weight=self._family_weight(self.mlp_moe_cfg, 'load_balance'),
                 mi_loss_weight=self._family_weight(self.mlp_moe_cfg, 'mi_loss')),
        ]
        self._init_multitask_pass(record_routing)

        # 6. what trains: experts, routers, LoRA, task embeddings, expert layers, patterns
        self.trainable_patterns = tuple(trainable)
        self._trainable_names = set() if self.frozen else self._select_trainable(
            layer_trainable)
        self._apply_freeze()

    # ------------------------------------------------------------------------------------------
    # insertion
    def _insert_lora(self) -> List[str]:
        if self.lora_cfg is None:
            return []
        cfg = self.lora_cfg
        names = [f'blocks.{i}.{TARGET_LAYERS[t]}' for i in cfg['blocks'] for t in cfg['targets']]

        def factory(name, linear):
            return MoELoRALinear(linear, num_tasks=len(self.tasks), num_experts=1, top_k=1,
                                 num_shared=0, rank=cfg['rank'], alpha=cfg['alpha'],
                                 shared_gating='none')

        return wrap_linears(self, names, factory)

    def _insert_mlp_moe(self, record_routing: bool) -> Tuple[List[str], set]:
        """MLP-level expert layers from the (pretrained) MLPs; returns names and what trains."""
        if self.mlp_moe_cfg is None:
            return [], set()
        cfg = dict(self.mlp_moe_cfg)
        layer_cls = cfg.pop('type')
        blocks = cfg.pop('blocks')
        lb_weight = cfg.pop('load_balance_weight')
        mi_weight = cfg.pop('mi_loss_weight')
        names, trainable = [], set()
        for index in blocks:
            mlp = self.blocks[index].mlp
            layer = layer_cls(mlp.fc1, mlp.fc2, mlp.act, num_tasks=len(self.tasks),
                              load_balance=lb_weight > 0, mutual_information=mi_weight > 0,
                              record_routing=record_routing, **cfg)
            self.blocks[index].mlp = layer
            name = f'blocks.{index}.mlp'
            names.append(name)
            trainable.update(f'{name}.{p}' for p, param in layer.named_parameters()
                             if param.requires_grad)
        return names, trainable

    def _insert_adapters(self, record_routing: bool) -> List[str]:
        if self.adapter_cfg is None:
            return []
        cfg = self.adapter_cfg
        experts = dict(num_tasks=len(self.tasks), num_experts=cfg['num_experts'],
                       top_k=cfg['top_k'], num_shared=cfg['num_shared'], rank=cfg['rank'],
                       alpha=cfg['alpha'], shared_gating=cfg['shared_gating'],
                       load_balance=cfg['load_balance_weight'] > 0,
                       mutual_information=cfg['mi_loss_weight'] > 0,
                       record_routing=record_routing)
        if cfg['placement'] == 'ffn':
            names = [f'blocks.{i}.mlp' for i in cfg['blocks']]
            return wrap_modules(self, names, lambda name, ffn: MoELoRAFFN(ffn, **experts))
        names = [f'blocks.{i}.{TARGET_LAYERS[t]}' for i in cfg['blocks'] for t in cfg['targets']]
        return wrap_linears(self, names, lambda name, linear: MoELoRALinear(linear, **experts))

    def _insert_task_embedding(self) -> None:
        """``task_embed`` ``(T_e, C)`` (zeros) and the row of each task (``T_e``: none)."""
        chosen = self.task_embedding_tasks
        if not chosen:
            self.task_embed = None
            return
        self.task_embed = nn.Parameter(torch.zeros(len(chosen), self.embed_dims))
        rows = [chosen.index(t) if t in chosen else len(chosen) for t in self.tasks]
        self.register_buffer('_task_embed_row', torch.tensor(rows), persistent=False)

    @property
    def task_agnostic(self) -> bool:
        """No router and no task embedding: every task gets the same features (one pass)."""
        return (self.task_embed is None and not self.mlp_moe_names
                and all(m.router is None for m in self.modules() if isinstance(m, LoRAExperts)))

    @staticmethod
    def _family_weight(cfg: Optional[dict], loss: str) -> float:
        return 0.0 if cfg is None else float(cfg[f'{loss}_weight'])

    # ------------------------------------------------------------------------------------------
    # construction helpers
    def _parse_out_indices(self, out_indices) -> Tuple[int, ...]:
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        result = []
        for index in out_indices:
            if not isinstance(index, int) or not -self.num_layers <= index < self.num_layers:
                raise ValueError(f'out_indices: {index!r} is not a block index of a '
                                 f'{self.num_layers}-layer ViT')
            result.append(index % self.num_layers)
        if len(set(result)) != len(result):
            raise ValueError(f'out_indices={tuple(out_indices)} repeats a block')
        return tuple(result)

    def _parse_blocks(self, blocks, field: str) -> Tuple[int, ...]:
        """``None`` (all blocks), an index or indices -> sorted non-negative indices."""
        if blocks is None:
            return tuple(range(self.num_layers))
        blocks = (blocks, ) if isinstance(blocks, int) else tuple(blocks)
        for index in blocks:
            if not isinstance(index, int) or not -self.num_layers <= index < self.num_layers:
                raise ValueError(f'{field}: {index!r} is not a block index of a '
                                 f'{self.num_layers}-layer ViT')
        return tuple(sorted({i % self.num_layers for i in blocks}))

    def _parse_targets(self, targets, field: str) -> Tuple[str, ...]:
        targets = (targets, ) if isinstance(targets, str) else tuple(targets)
        if not targets:
            raise ValueError(f'{field} is empty; name at least one of {tuple(TARGET_LAYERS)}')
        for target in targets:
            if target not in TARGET_LAYERS:
                raise ValueError(f'{field}: unknown layer {target!r}; known layers are '
                                 f'{tuple(TARGET_LAYERS)}')
        if len(set(targets)) != len(targets):
            raise ValueError(f'{field}={targets} repeats a layer')
        return targets

    def _parse_adapter(self, adapter: Optional[dict]) -> Optional[dict]:
        if adapter is None:
            return None
        cfg = with_defaults(adapter, ADAPTER_DEFAULTS, 'adapter')
        if cfg['placement'] not in PLACEMENTS:
            raise ValueError(f"adapter.placement={cfg['placement']!r} is not one of "
                             f'{PLACEMENTS}')
        check_moe_lora_args(cfg['num_experts'], cfg['top_k'], cfg['num_shared'], cfg['rank'],
                            cfg['shared_gating'], cfg['alpha'], prefix='adapter.',
                            active_experts=cfg['active_experts'])
        if cfg['placement'] == 'ffn':
            if cfg['targets'] is not None:
                raise ValueError(f"adapter.targets={cfg['targets']!r} is for "
                                 f"placement='linear'; placement='ffn' puts one expert set "
                                 f'beside each block\'s FFN (drop targets, or use the lora '
                                 f'dict for plain LoRA on linears)')
        else:
            cfg['targets'] = self._parse_targets(
                LINEAR_PLACEMENT_TARGETS if cfg['targets'] is None else cfg['targets'],
                'adapter.targets')
        cfg['blocks'] = self._parse_blocks(cfg['blocks'], 'adapter.blocks')
        check_router_loss_weights(cfg, 'adapter.', constant_gates_reason(cfg))
        return cfg

    def _parse_lora(self, lora: Optional[dict]) -> Optional[dict]:
        if lora is None:
            return None
        cfg = with_defaults(lora, LORA_DEFAULTS, 'lora')
        # plain LoRA is the 1/1/0/r expert configuration: the same checks name lora.rank/alpha
        check_moe_lora_args(1, 1, 0, cfg['rank'], 'none', cfg['alpha'], prefix='lora.')
        cfg['targets'] = self._parse_targets(cfg['targets'], 'lora.targets')
        cfg['blocks'] = self._parse_blocks(cfg['blocks'], 'lora.blocks')
        return cfg

    def _parse_task_embedding(self, task_embedding) -> Tuple[str, ...]:
        """``True`` / ``False`` / task names -> the tasks that get an embedding."""
        if isinstance(task_embedding, bool):
            return self.tasks if task_embedding else ()
        if isinstance(task_embedding, str) or not isinstance(task_embedding, (list, tuple)):
            raise TypeError(f'task_embedding must be True, False or a list of task names, got '
                            f'{task_embedding!r}')
        unknown = [t for t in task_embedding if t not in self.tasks]
        if unknown:
            raise ValueError(f'task_embedding names tasks {unknown} that are not in '
                             f'tasks={self.tasks}')
        if len(set(task_embedding)) != len(task_embedding):
            raise ValueError(f'task_embedding={tuple(task_embedding)} repeats a task')
        return tuple(t for t in self.tasks if t in task_embedding)

    def _parse_mlp_moe(self, mlp_moe: Optional[dict]) -> Optional[dict]:
        """Check the ``mlp_moe`` dict; returns it with defaults, ``type`` resolved to a class."""
        if mlp_moe is None:
            return None
        if not isinstance(mlp_moe, dict):
            raise TypeError(f'mlp_moe must be a dict or None, got {type(mlp_moe).__name__}')
        cfg = dict(mlp_moe)
        if 'type' not in cfg:
            raise ValueError("mlp_moe: missing key 'type' (e.g. 'FGMoE' or 'TaskMoE')")
        layer_type = cfg.pop('type')
        layer_cls = MODELS.get(layer_type) if isinstance(layer_type, str) else layer_type
        if not isinstance(layer_cls, type) or not hasattr(layer_cls, 'CONFIG_DEFAULTS'):
            raise ValueError(f'mlp_moe.type={layer_type!r} is not a registered MLP expert '
                             f"layer (e.g. 'FGMoE', 'TaskMoE')")
        known = {**MLP_MOE_DEFAULTS, **layer_cls.CONFIG_DEFAULTS}
        unknown = sorted(set(cfg) - set(known))
        if unknown:
            raise ValueError(f'mlp_moe: unknown keys {unknown} for {layer_cls.__name__}; known '
                             f"keys are {['type'] + sorted(known)}")
        cfg = {**known, **cfg}
        layer_cls.check_config(
            self.mlp_hidden_dims, prefix='mlp_moe.',
            **{k: v for k, v in cfg.items() if k in layer_cls.CONFIG_DEFAULTS})
        cfg['blocks'] = self._parse_blocks(cfg['blocks'], 'mlp_moe.blocks')
        check_router_loss_weights(cfg, 'mlp_moe.')
        cfg['type'] = layer_cls
        return cfg

    def _check_layers_apart(self) -> None:
        """No layer is wrapped twice: routed experts, plain LoRA and ``mlp_moe`` stay apart."""
        adapter, lora, mlp_moe = self.adapter_cfg, self.lora_cfg, self.mlp_moe_cfg
        mlp_blocks = set(mlp_moe['blocks']) if mlp_moe is not None else set()
        if adapter is not None and adapter['placement'] == 'ffn':
            both = sorted(set(adapter['blocks']) & mlp_blocks)
            if both:
                raise ValueError(f"adapter.placement='ffn' puts experts beside the FFN of "
                                 f'blocks {tuple(both)}, whose MLPs mlp_moe replaces; keep '
                                 f'adapter.blocks and mlp_moe.blocks apart')
        for field, cfg in (('adapter', adapter), ('lora', lora)):
            if cfg is None or cfg.get('targets') is None:
                continue
            mlp_targets = [t for t in cfg['targets'] if t in ('fc1', 'fc2')]
            both = sorted(set(cfg['blocks']) & mlp_blocks)
            if mlp_targets and both:
                raise ValueError(f'{field}.targets {tuple(mlp_targets)} would wrap MLP linears '
                                 f'of blocks {tuple(both)}, whose MLPs mlp_moe replaces; drop '
                                 f"'fc1'/'fc2' from {field}.targets or keep {field}.blocks and "
                                 f'mlp_moe.blocks apart')
        if adapter is not None and adapter['placement'] == 'linear' and lora is not None:
            shared = sorted(set(adapter['targets']) & set(lora['targets']))
            both = sorted(set(adapter['blocks']) & set(lora['blocks']))
            if shared and both:
                raise ValueError(f'adapter.targets and lora.targets both wrap {tuple(shared)} '
                                 f'in blocks {tuple(both)}; a linear takes one adapter')

    def _parse_frozen(self, frozen: bool, trainable: Sequence[str]) -> bool:
        if not isinstance(frozen, bool):
            raise TypeError(f'frozen must be True or False, got {frozen!r}')
        if not frozen:
            return False
        if tuple(trainable):
            raise ValueError(f'frozen=True freezes the whole backbone but trainable='
                             f'{tuple(trainable)} asks to train some of it; use one or the '
                             f'other')
        for field, cfg in (('adapter', self.adapter_cfg), ('mlp_moe', self.mlp_moe_cfg)):
            for key in ('load_balance_weight', 'mi_loss_weight'):
                if cfg is not None and cfg[key] > 0:
                    raise ValueError(f'frozen=True trains no router, so {field}.{key}='
                                     f'{cfg[key]} has nothing to train; set it to 0')
        return True

    def _init_plain_weights(self) -> None:
        """timm-style init of the plain ViT (replaced by ``pretrained`` when given)."""
        trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def _select_trainable(self, layer_trainable: set) -> set:
        """Experts, routers and LoRA (everything of a ``LoRAExperts`` but its base layer),
        task embeddings, the trainable parts of expert layers, and the ``trainable`` patterns."""
        selected = set(layer_trainable)
        for module_name, module in self.named_modules():
            if isinstance(module, LoRAExperts):
                selected.update(f'{module_name}.{p}' for p, _ in module.named_parameters()
                                if not p.startswith('base_layer.'))
        if self.task_embed is not None:
            selected.add('task_embed')
        names = [n for n, _ in self.named_parameters()]
        for pattern in self.trainable_patterns:
            try:
                matched = [n for n in names if re.search(pattern, n)]
            except re.error as err:
                raise ValueError(f'trainable: invalid pattern {pattern!r}: {err}') from None
            if not matched:
                raise ValueError(f'trainable: pattern {pattern!r} matches no parameter')
            selected.update(matched)
        return selected

    def _apply_freeze(self) -> None:
        for name, param in self.named_parameters():
            param.requires_grad_(name in self._trainable_names)

    def train(self, mode: bool = True):
        """Set the mode and re-apply the freezing (base weights stay frozen)."""
        super().train(mode)
        self._apply_freeze()
        return self

    # ------------------------------------------------------------------------------------------
    # the two halves of a forward (the multi-task pass composes them, see MultiTaskPassMixin)
    def _embed(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """``(N, 3, H, W)`` -> tokens ``(N, 1 + h * w, C)`` with position embeddings, grid."""
        if inputs.dim() != 4:
            raise ValueError(f'inputs must be (N, C, H, W), got shape {tuple(inputs.shape)}')
        x, grid = self.patch_embed(inputs)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x + resize_pos_embed(self.pos_embed, grid, self.grid_size), grid

    def _add_task_embedding(self, x: torch.Tensor, task) -> torch.Tensor:
        """``x_t = x + e_t`` for tokens ``(N, L, C)`` and an int or ``(N,)`` task index."""
        if self.task_embed is None:
            return x
        table = torch.cat([self.task_embed, self.task_embed.new_zeros(1, self.embed_dims)])
        rows = self._task_embed_row[task]
        embedding = table[rows]
        return x + (embedding.view(1, 1, -1) if embedding.dim() == 1 else embedding[:, None])

    def _encode(self, x: torch.Tensor, grid: Tuple[int, int], task) -> Tuple[torch.Tensor]:
        x = self._add_task_embedding(x, task)
        outs = []
        for i, block in enumerate(self.blocks):
            x = block(x, task)
            if i == self.num_layers - 1 and self.final_norm:
                x = self.norm(x)
            if i in self.out_indices:
                out = x[:, 1:].reshape(x.shape[0], grid[0], grid[1], -1)
                outs.append(out.permute(0, 3, 1, 2).contiguous())
        return tuple(outs)
