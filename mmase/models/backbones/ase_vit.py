"""Plain ViT with timm parameter names, task-routed LoRA-MoE adapters (ASE) and MLP experts.

The ViT is built plainly (``patch_embed.proj``, ``cls_token``, ``pos_embed``,
``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``), so timm ViT state
dicts load with a strict key check. Then, in this order:

1. ``mlp_moe``: the MLPs of the chosen blocks become MLP-level expert layers built from the
   (pretrained) ``fc1``/``fc2``: :class:`~mmase.models.adapters.FGMoE` (fine-grained slices,
   shared slices, global expert) or :class:`~mmase.models.adapters.TaskMoE` (full-MLP experts
   with task-aware routing);
2. ``adapter``: :func:`~mmase.models.adapters.wrap_linears` wraps the configured linears with
   :class:`~mmase.models.adapters.MoELoRALinear`.

All base weights are frozen; adapters, expert layers (their trainable parts), routers and the
``trainable`` name patterns train; ``frozen=True`` freezes everything.

Adapters follow Li et al., 2025 (ASE, arXiv 2510.00570), Sec. 3: one router per task, top-k
sparse LoRA experts plus shared experts gated jointly with them ('adaptive').
"""
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from timm.layers import DropPath, resample_abs_pos_embed, trunc_normal_

from mmase.tasks import check_tasks
from ..adapters import MoELoRALinear, check_moe_lora_args, wrap_linears

#: (embed_dims, num_layers, num_heads, mlp_ratio) of the named architectures.
ARCH_SETTINGS = {
    'vit-t': dict(embed_dims=192, num_layers=12, num_heads=3, mlp_ratio=4.0),
    'vit-s': dict(embed_dims=384, num_layers=12, num_heads=6, mlp_ratio=4.0),
    'vit-b': dict(embed_dims=768, num_layers=12, num_heads=12, mlp_ratio=4.0),
    'vit-l': dict(embed_dims=1024, num_layers=24, num_heads=16, mlp_ratio=4.0),
}

#: Adapter target name -> submodule path inside a block.
TARGET_LAYERS = {'qkv': 'attn.qkv', 'proj': 'attn.proj', 'fc1': 'mlp.fc1', 'fc2': 'mlp.fc2'}

#: Defaults of the ``adapter`` dict: ASE with 16 sparse experts, top-3, 1 shared, rank 4.
ADAPTER_DEFAULTS = dict(num_experts=16, top_k=3, num_shared=1, rank=4, alpha=None,
                        shared_gating='adaptive', targets=('qkv', 'proj', 'fc1', 'fc2'),
                        blocks=None, load_balance_weight=0.0)

#: Keys of the ``mlp_moe`` dict handled by the backbone; the others go to the layer class
#: (its ``CONFIG_DEFAULTS``).
MLP_MOE_DEFAULTS = dict(blocks=None, load_balance_weight=0.0)

MULTITASK_MODES = ('batched', 'sequential')

#: Checkpoint keys of the classification head, dropped when loading a backbone.
_CLASSIFIER_PREFIXES = ('head.', 'head_drop.')


def resize_pos_embed(pos_embed: torch.Tensor, new_grid: Tuple[int, int],
                     old_grid: Tuple[int, int]) -> torch.Tensor:
    """Resample an absolute position embedding with one class-token prefix to another grid.

    The one place where position embeddings change size (checkpoint loading and inputs of
    another size). Bicubic with antialiasing, as timm's ``resample_abs_pos_embed``.

    Args:
        pos_embed (Tensor): ``(1, 1 + old_h * old_w, C)``.
        new_grid (tuple[int, int]): ``(new_h, new_w)`` patches.
        old_grid (tuple[int, int]): ``(old_h, old_w)`` patches of ``pos_embed``.

    Returns:
        Tensor: ``(1, 1 + new_h * new_w, C)`` (``pos_embed`` itself when the grids match).
    """
    if tuple(new_grid) == tuple(old_grid):
        return pos_embed
    return resample_abs_pos_embed(pos_embed, new_size=list(new_grid), old_size=list(old_grid),
                                  num_prefix_tokens=1)


def _call(layer: nn.Module, x: torch.Tensor, task) -> torch.Tensor:
    """Apply ``layer``, passing the task index only to task-conditioned (adapted) layers."""
    if getattr(layer, 'task_conditioned', False):
        return layer(x, task)
    return layer(x)


class PatchEmbed(nn.Module):
    """Non-overlapping patches by a strided convolution.

    Args:
        patch_size (int): Patch side ``p`` in pixels.
        embed_dims (int): Output channels ``C``.
        in_channels (int): Image channels. Default: 3.

    Shapes: ``(N, 3, H, W)`` -> tokens ``(N, floor(H/p) * floor(W/p), C)`` and the grid.
    """

    def __init__(self, patch_size: int, embed_dims: int, in_channels: int = 3):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        x = self.proj(x)
        grid = (x.shape[2], x.shape[3])
        return x.flatten(2).transpose(1, 2), grid


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection (timm layout).

    Shapes: ``(N, L, C)`` -> ``(N, L, C)``.
    """

    def __init__(self, embed_dims: int, num_heads: int):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'arch.embed_dims={embed_dims} is not divisible by '
                             f'arch.num_heads={num_heads}')
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dims, embed_dims * 3)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: torch.Tensor, task) -> torch.Tensor:
        n, length, channels = x.shape
        qkv = _call(self.qkv, x, task).reshape(n, length, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return _call(self.proj, x.transpose(1, 2).reshape(n, length, channels), task)


class Mlp(nn.Module):
    """Two-layer GELU MLP (timm layout). Shapes: ``(N, L, C)`` -> ``(N, L, C)``."""

    def __init__(self, embed_dims: int, hidden_dims: int):
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def forward(self, x: torch.Tensor, task) -> torch.Tensor:
        return _call(self.fc2, self.act(_call(self.fc1, x, task)), task)


class Block(nn.Module):
    """Pre-norm transformer block (timm ``Block`` without layer scale). Shapes: (N, L, C)."""

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float,
                 drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.attn = Attention(embed_dims, num_heads)
        self.norm2 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, task) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), task))
        return x + self.drop_path(self.mlp(self.norm2(x), task))


def _parse_arch(arch) -> Dict[str, float]:
    if isinstance(arch, str):
        if arch not in ARCH_SETTINGS:
            raise ValueError(f'arch={arch!r} is not one of {sorted(ARCH_SETTINGS)} (or give a '
                             f'dict with embed_dims, num_layers, num_heads, mlp_ratio)')
        return dict(ARCH_SETTINGS[arch])
    if not isinstance(arch, dict):
        raise TypeError(f'arch must be a name or a dict, got {type(arch).__name__}')
    required = ('embed_dims', 'num_layers', 'num_heads')
    missing = [k for k in required if k not in arch]
    unknown = sorted(set(arch) - set(required) - {'mlp_ratio'})
    if missing or unknown:
        raise ValueError(f'arch dict: missing keys {missing}, unknown keys {unknown}; expected '
                         f'embed_dims, num_layers, num_heads and optionally mlp_ratio')
    return {'mlp_ratio': 4.0, **arch}


def _to_2tuple(value, field: str) -> Tuple[int, int]:
    if isinstance(value, int):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value):
        raise ValueError(f'{field}={value!r} must be a positive int or (h, w)')
    return value


@MODELS.register_module()
class ASEViT(BaseModule):
    """ViT backbone with task-routed LoRA mixture-of-experts adapters (ASE).

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
        adapter (dict | None): Adapter config, keys (defaults): ``num_experts`` (16), ``top_k``
            (3), ``num_shared`` (1), ``rank`` (4), ``alpha`` (None = rank, i.e. scale 1),
            ``shared_gating`` ('adaptive' | 'fixed' | 'none'), ``targets`` (('qkv', 'proj',
            'fc1', 'fc2')), ``blocks`` (None = all blocks, or block indices),
            ``load_balance_weight`` (0.0: off). ``num_experts=1, top_k=1, num_shared=0`` is
            plain LoRA. None: no adapters. Adapters may not target ``fc1``/``fc2`` of blocks
            whose MLP ``mlp_moe`` replaces.
        mlp_moe (dict | None): MLP-level expert layers replacing the MLP of chosen blocks,
            built from its pretrained ``fc1``/``fc2``. Keys: ``type`` (``'FGMoE'`` |
            ``'TaskMoE'``, or any registered class with the same interface), ``blocks`` (None =
            all blocks, or block indices, e.g. ``(1, 3, 5, 7, 9, 11)`` for every other block),
            ``load_balance_weight`` (0.0: off), and the layer's own keys with their defaults:
            FGMoE ``num_experts`` (16 slices, shared ones included), ``top_k`` (6),
            ``num_shared`` (2), ``global_expert`` (True), ``task_specific_experts`` (True);
            TaskMoE ``num_experts`` (8), ``top_k`` (2), ``gating`` ('task_router' |
            'task_embedding'), ``gate_norm`` ('topk' | 'all'), ``init_noise`` (0.0).
            Default: None (plain MLPs).
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
        frozen (bool): Freeze the whole backbone, adapters, expert layers and routers included
            (e.g. decoder-only fine-tuning of a model whose backbone was trained before and is
            loaded from a checkpoint). Needs ``trainable=()`` and no load balancing. A plain
            frozen encoder is ``adapter=None, mlp_moe=None`` (nothing to train without
            ``trainable`` patterns). Default: False.
        multitask_mode (str): How :meth:`forward_tasks` runs several tasks: ``'batched'``
            (one pass with the batch repeated per task and a per-sample task index) or
            ``'sequential'`` (one pass per task). Default: ``'batched'``.
        record_routing (bool): Record routing statistics (see :meth:`routing_stats`).
            Default: False.
        init_cfg (dict, optional): mmengine init config. Default: None.

    Forward: ``inputs`` ``(N, 3, H, W)`` normalised images -> tuple of ``(N, C, H/p, W/p)``.
    """

    #: Segmentors pass the task name to ``forward``.
    task_conditioned = True

    def __init__(self,
                 arch: Union[str, dict] = 'vit-s',
                 img_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: int = 16,
                 out_indices: Union[int, Sequence[int]] = -1,
                 tasks: Sequence[str] = ('semseg', ),
                 adapter: Optional[dict] = dict(),
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
        settings = _parse_arch(arch)
        self.embed_dims = int(settings['embed_dims'])
        self.num_layers = int(settings['num_layers'])
        self.tasks = check_tasks(tasks, 'tasks')
        self.img_size = _to_2tuple(img_size, 'img_size')
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
        self.mlp_hidden_dims = int(self.embed_dims * float(settings['mlp_ratio']))
        self.mlp_moe_cfg = self._parse_mlp_moe(mlp_moe)
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
            self.load_pretrained(pretrained)

        # 2. MLP-level expert layers built from the (pretrained) MLPs; record what they train
        layer_trainable = set()
        self.mlp_moe_names: List[str] = []
        if self.mlp_moe_cfg is not None:
            cfg = dict(self.mlp_moe_cfg)
            layer_cls = cfg.pop('type')
            blocks = cfg.pop('blocks')
            weight = cfg.pop('load_balance_weight')
            for index in blocks:
                mlp = self.blocks[index].mlp
                layer = layer_cls(mlp.fc1, mlp.fc2, mlp.act, num_tasks=len(self.tasks),
                                  load_balance=weight > 0, record_routing=record_routing,
                                  **cfg)
                self.blocks[index].mlp = layer
                name = f'blocks.{index}.mlp'
                self.mlp_moe_names.append(name)
                layer_trainable.update(f'{name}.{p}' for p, param in layer.named_parameters()
                                       if param.requires_grad)

        # 3. adapters around the named linears
        self.adapter_names: List[str] = []
        if self.adapter_cfg is not None:
            cfg = self.adapter_cfg
            names = [f'blocks.{i}.{TARGET_LAYERS[t]}' for i in cfg['blocks']
                     for t in cfg['targets']]

            def factory(name, linear):
                return MoELoRALinear(
                    linear, num_tasks=len(self.tasks), num_experts=cfg['num_experts'],
                    top_k=cfg['top_k'], num_shared=cfg['num_shared'], rank=cfg['rank'],
                    alpha=cfg['alpha'], shared_gating=cfg['shared_gating'],
                    load_balance=cfg['load_balance_weight'] > 0,
                    record_routing=record_routing)

            self.adapter_names = wrap_linears(self, names, factory)
        self.load_balance_weight = 0.0 if self.adapter_cfg is None else float(
            self.adapter_cfg['load_balance_weight'])
        self.mlp_moe_load_balance_weight = 0.0 if self.mlp_moe_cfg is None else float(
            self.mlp_moe_cfg['load_balance_weight'])
        self._lb_tasks: List[str] = []
        self._record_routing = bool(record_routing)

        # 4. what trains: adapters, expert layers, routers and the `trainable` patterns
        self.trainable_patterns = tuple(trainable)
        self._trainable_names = set() if self.frozen else self._select_trainable(
            layer_trainable)
        self._apply_freeze()

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

    @staticmethod
    def _check_weight(weight, field: str) -> None:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f'{field}={weight!r} must be a number >= 0')

    def _parse_adapter(self, adapter: Optional[dict]) -> Optional[dict]:
        if adapter is None:
            return None
        if not isinstance(adapter, dict):
            raise TypeError(f'adapter must be a dict or None, got {type(adapter).__name__}')
        unknown = sorted(set(adapter) - set(ADAPTER_DEFAULTS))
        if unknown:
            raise ValueError(f'adapter: unknown keys {unknown}; known keys are '
                             f'{sorted(ADAPTER_DEFAULTS)}')
        cfg = {**ADAPTER_DEFAULTS, **adapter}
        check_moe_lora_args(cfg['num_experts'], cfg['top_k'], cfg['num_shared'], cfg['rank'],
                            cfg['shared_gating'], cfg['alpha'], prefix='adapter.')
        targets = (cfg['targets'], ) if isinstance(cfg['targets'], str) else tuple(
            cfg['targets'])
        if not targets:
            raise ValueError('adapter.targets is empty; name at least one of '
                             f'{tuple(TARGET_LAYERS)} (or set adapter=None)')
        for target in targets:
            if target not in TARGET_LAYERS:
                raise ValueError(f'adapter.targets: unknown layer {target!r}; known layers are '
                                 f'{tuple(TARGET_LAYERS)}')
        if len(set(targets)) != len(targets):
            raise ValueError(f'adapter.targets={targets} repeats a layer')
        cfg['targets'] = targets
        cfg['blocks'] = self._parse_blocks(cfg['blocks'], 'adapter.blocks')
        weight = cfg['load_balance_weight']
        self._check_weight(weight, 'adapter.load_balance_weight')
        constant_gates = cfg['num_experts'] == 1 and (cfg['num_shared'] == 0
                                                      or cfg['shared_gating'] == 'fixed')
        if weight > 0 and constant_gates:
            raise ValueError(f'adapter.load_balance_weight={weight} needs a router, but with '
                             f"num_experts=1 and shared_gating={cfg['shared_gating']!r} the "
                             f'gates are constant and no router is built')
        return cfg

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
        self._check_weight(cfg['load_balance_weight'], 'mlp_moe.load_balance_weight')
        cfg['type'] = layer_cls
        return cfg

    def _check_layers_apart(self) -> None:
        """Adapters may not wrap ``fc1``/``fc2`` of MLPs that ``mlp_moe`` replaces."""
        if self.adapter_cfg is None or self.mlp_moe_cfg is None:
            return
        mlp_targets = [t for t in self.adapter_cfg['targets'] if t in ('fc1', 'fc2')]
        both = sorted(set(self.adapter_cfg['blocks']) & set(self.mlp_moe_cfg['blocks']))
        if mlp_targets and both:
            raise ValueError(f'adapter.targets {tuple(mlp_targets)} would wrap MLP linears of '
                             f'blocks {tuple(both)}, whose MLPs mlp_moe replaces; drop '
                             f"'fc1'/'fc2' from adapter.targets (e.g. targets=('qkv', 'proj')) "
                             f'or keep adapter.blocks and mlp_moe.blocks apart')

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
            if cfg is not None and cfg['load_balance_weight'] > 0:
                raise ValueError(f'frozen=True trains no router, so '
                                 f"{field}.load_balance_weight={cfg['load_balance_weight']} "
                                 f'has nothing to train; set it to 0')
        return True

    def _init_plain_weights(self) -> None:
        """timm-style init of the plain ViT (replaced by ``pretrained`` when given)."""
        trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def load_pretrained(self, path: str) -> None:
        """Load a timm ViT state dict into the plain (not yet adapted) ViT, strictly.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            ValueError: missing / unexpected keys or mismatched shapes (all listed).
        """
        if getattr(self, 'adapter_names', None) or getattr(self, 'mlp_moe_names', None):
            raise RuntimeError('load_pretrained must run before the adapters and expert '
                               'layers are inserted')
        if not osp.isfile(path):
            raise FileNotFoundError(f'pretrained: checkpoint file not found: {path}')
        if path.endswith('.safetensors'):
            from safetensors.torch import load_file
            state = load_file(path, device='cpu')
        else:
            state = torch.load(path, map_location='cpu', weights_only=True)
        for key in ('state_dict', 'model'):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
        if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
            raise ValueError(f'pretrained={path}: expected a state dict of tensors')
        dropped = sorted(k for k in state if k.startswith(_CLASSIFIER_PREFIXES))
        state = {k: v for k, v in state.items() if k not in dropped}
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f'pretrained={path} does not match this ViT '
                             f'({self.embed_dims} dims, {self.num_layers} layers): missing keys '
                             f'{missing}, unexpected keys {unexpected}')
        if 'pos_embed' in state:
            state['pos_embed'] = self._checkpoint_pos_embed(state['pos_embed'], path)
        mismatched = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}'
                      for k, v in own.items() if state[k].shape != v.shape]
        if mismatched:
            raise ValueError(f'pretrained={path} does not match this ViT: shape mismatch in '
                             + '; '.join(mismatched))
        self.load_state_dict(state, strict=True)
        print_log(f'ASEViT: loaded {path}' +
                  (f' (dropped classifier keys {dropped})' if dropped else ''), logger='current')

    def _checkpoint_pos_embed(self, pos_embed: torch.Tensor, path: str) -> torch.Tensor:
        """Resample a checkpoint's (square-grid) position embedding to the training grid."""
        if pos_embed.dim() != 3 or pos_embed.shape[-1] != self.embed_dims:
            return pos_embed  # reported as a shape mismatch
        side = int(round((pos_embed.shape[1] - 1)**0.5))
        if side * side != pos_embed.shape[1] - 1:
            raise ValueError(f'pretrained={path}: pos_embed has {pos_embed.shape[1]} tokens, '
                             f'not 1 class token + a square grid')
        return resize_pos_embed(pos_embed.float(), self.grid_size, (side, side)).to(
            pos_embed.dtype)

    def _select_trainable(self, layer_trainable: set) -> set:
        adapter_params = set()
        for name in self.adapter_names:
            module = self.get_submodule(name)
            for pname, _ in module.named_parameters():
                if not pname.startswith('base_layer.'):
                    adapter_params.add(f'{name}.{pname}')
        names = [n for n, _ in self.named_parameters()]
        selected = adapter_params | layer_trainable
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
    # forward
    def _task_index(self, task: str) -> int:
        if task not in self.tasks:
            raise KeyError(f'task {task!r} is not one of this backbone\'s tasks {self.tasks}')
        return self.tasks.index(task)

    def _embed(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        if inputs.dim() != 4:
            raise ValueError(f'inputs must be (N, C, H, W), got shape {tuple(inputs.shape)}')
        x, grid = self.patch_embed(inputs)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x + resize_pos_embed(self.pos_embed, grid, self.grid_size), grid

    def _encode(self, x: torch.Tensor, grid: Tuple[int, int], task) -> Tuple[torch.Tensor]:
        outs = []
        for i, block in enumerate(self.blocks):
            x = block(x, task)
            if i == self.num_layers - 1 and self.final_norm:
                x = self.norm(x)
            if i in self.out_indices:
                out = x[:, 1:].reshape(x.shape[0], grid[0], grid[1], -1)
                outs.append(out.permute(0, 3, 1, 2).contiguous())
        return tuple(outs)

    def forward(self, inputs: torch.Tensor, task: str) -> Tuple[torch.Tensor, ...]:
        """Features of one task.

        Args:
            inputs (Tensor): ``(N, 3, H, W)`` images.
            task (str): One of ``self.tasks``; selects the routers.

        Returns:
            tuple[Tensor]: One ``(N, C, H // p, W // p)`` map per ``out_indices`` entry, in
            block order (as mmseg's ViT).
        """
        index = self._task_index(task)
        x, grid = self._embed(inputs)
        if self.training and self._load_balancing:
            self._lb_tasks.append(task)
        return self._encode(x, grid, index)

    def forward_tasks(self, inputs: torch.Tensor,
                      tasks: Optional[Sequence[str]] = None) -> Dict[str, Tuple[torch.Tensor]]:
        """Features of several tasks for the same images.

        ``'batched'``: the patch embedding runs once, the tokens are repeated per task and one
        pass runs with a per-sample task index (``T * N`` samples). ``'sequential'``: one
        :meth:`forward` per task. Both give the same features.

        Args:
            inputs (Tensor): ``(N, 3, H, W)``.
            tasks (Sequence[str], optional): Subset of ``self.tasks``; None = all.

        Returns:
            dict[str, tuple[Tensor]]: task -> maps as :meth:`forward`.
        """
        tasks = self.tasks if tasks is None else check_tasks(tasks, 'tasks', self.tasks)
        if self.multitask_mode == 'sequential' or len(tasks) == 1:
            return {task: self.forward(inputs, task) for task in tasks}
        x, grid = self._embed(inputs)
        n = x.shape[0]
        x = x.repeat(len(tasks), 1, 1)
        index = torch.tensor([self._task_index(t) for t in tasks], device=x.device)
        if self.training and self._load_balancing:
            self._lb_tasks.extend(tasks)
        outs = self._encode(x, grid, index.repeat_interleave(n))
        return {task: tuple(out[j * n:(j + 1) * n] for out in outs)
                for j, task in enumerate(tasks)}

    # ------------------------------------------------------------------------------------------
    # auxiliary losses and routing statistics
    @property
    def _load_balancing(self) -> bool:
        return self.load_balance_weight > 0 or self.mlp_moe_load_balance_weight > 0

    def _routed_layers(self):
        """``(name, module)`` of the MLP expert layers, then of the adapters."""
        for name in (*self.mlp_moe_names, *self.adapter_names):
            yield name, self.get_submodule(name)

    def pop_aux_losses(self) -> Dict[str, torch.Tensor]:
        """Load-balancing losses since the last call, weighted, one per task and layer family.

        ``loss_lb_<task> = adapter.load_balance_weight * mean`` over the adapted linears (and
        forwards) of the Switch loss of that task's router (1 for uniform routing);
        ``loss_lb_mlp_<task>`` likewise with ``mlp_moe.load_balance_weight`` over the MLP expert
        layers. A family without load balancing contributes no key; empty when nothing ran in
        training mode. Clears the store.
        """
        tasks, self._lb_tasks = self._lb_tasks, []
        losses = {}
        for prefix, names, weight in (('loss_lb', self.adapter_names, self.load_balance_weight),
                                      ('loss_lb_mlp', self.mlp_moe_names,
                                       self.mlp_moe_load_balance_weight)):
            total = count = None
            for name in names:
                popped = self.get_submodule(name).pop_load_balance()
                if popped is None:
                    continue
                total = popped[0] if total is None else total + popped[0]
                count = popped[1] if count is None else count + popped[1]
            if total is None:
                continue
            for task in dict.fromkeys(tasks):
                index = self.tasks.index(task)
                losses[f'{prefix}_{task}'] = weight * total[index] / count[index]
        return losses

    @property
    def record_routing(self) -> bool:
        """Whether adapters and expert layers record routing statistics (settable)."""
        return self._record_routing

    @record_routing.setter
    def record_routing(self, enabled: bool) -> None:
        self._record_routing = bool(enabled)
        for _, module in self._routed_layers():
            module.record_routing = self._record_routing

    def routing_stats(self) -> Dict[str, Dict[str, dict]]:
        """Routing statistics recorded since the last reset.

        Returns:
            dict: ``{task: {layer: dict(counts, tokens, selection_rate, ...)}}`` with ``layer``
            like ``'blocks.0.attn.qkv'`` (adapters) or ``'blocks.1.mlp'`` (MLP expert layers);
            ``counts`` ``(E,)`` selections of each routed expert (float64 tensor, CPU),
            ``tokens`` routed tokens, ``selection_rate`` = counts / tokens (sums to top_k),
            and the layer's mean per-token quantities as floats: adapters ``sparse_mass`` /
            ``shared_mass`` (mean total gate weight of sparse / shared experts), FGMoE
            ``global_mass`` (mean global-expert gate), TaskMoE ``sparse_mass``.
            Empty when nothing was recorded (``record_routing`` off).
        """
        result: Dict[str, Dict[str, dict]] = {}
        for name, module in self._routed_layers():
            stats = module.routing_stats()
            if stats is None:
                continue
            stats = {k: v.detach().cpu() for k, v in stats.items()}
            for index, task in enumerate(self.tasks):
                tokens = float(stats['tokens'][index])
                if tokens == 0:
                    continue
                entry = dict(counts=stats['counts'][index], tokens=int(tokens),
                             selection_rate=stats['counts'][index] / tokens)
                entry.update({k: float(v[index]) for k, v in stats.items()
                              if k not in ('counts', 'tokens')})
                result.setdefault(task, {})[name] = entry
        return result

    def reset_routing_stats(self) -> None:
        for _, module in self._routed_layers():
            module.reset_routing_stats()
