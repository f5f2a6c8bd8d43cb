"""ASEViT: a timm-named ViT plus the injector (task-routed LoRA experts, plain LoRA, FFN-level
experts, task embeddings).

The ViT is built plainly (``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``norm_pre``,
``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``; :mod:`.vit_layers`),
so timm ViT state dicts load with a strict key check (:mod:`.timm_loading`, at
:meth:`init_weights`). Everything else is :class:`~.adapted_backbone.AdaptedBackbone`'s, as
for every adapted family: the typed adapter configs and the injector
(:mod:`mmase.models.injection`, layout :class:`~.timm_vit_layout.TimmViTLayout`), freezing,
the multi-task pass, router losses and routing statistics. In the injector's order: ``lora``
(plain LoRA, by default on the attention's ``qkv`` and ``proj``: the paper's "LoRA applied to
the backbone"), ``mlp_moe`` (FGMoE / Task-MoE layers built from the MLPs), ``adapter``
(``(N/k/S/r)`` experts beside each FFN, the paper's, or on named linears), ``task_embedding``
(``x_t = x + e_t`` on every token before the first block, zero-initialised).

Follows Li et al., 2025 (ASE, arXiv 2510.00570), Sec. 3: one router per task and block, top-k
sparse LoRA experts plus shared experts gated jointly with them ('adaptive'), the Mod-Squad
task-expert mutual-information loss on the routers.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from timm.layers import trunc_normal_

from ..injection import layout_for, parse_adapter_configs
from .adapted_backbone import AdaptedBackbone
from .timm_vit_layout import TARGET_LAYERS  # noqa: F401  (registers the layout)
from .vit_layers import Block, PatchEmbed, parse_arch, resize_pos_embed, to_2tuple


@MODELS.register_module()
class ASEViT(AdaptedBackbone):
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
            (:class:`~mmase.models.injection.RoutedExpertsConfig`)
            notation. Keys (defaults): ``placement`` ('ffn': one expert set and one router
            per task beside each block's FFN, ``y = x + FFN(x') + sum g_i B_i A_i x'``, the
            paper's; 'linear': one per named linear, ``y = W0 x + sum g_i B_i A_i x``);
            ``num_experts`` (16: ``N``, the shared experts included), ``top_k`` (3: ``k`` of
            the ``N - S`` sparse experts), ``num_shared`` (1: ``S``), ``rank`` (4: ``r``),
            ``alpha`` (None = rank, i.e. scale 1), ``shared_gating`` ('adaptive' (ASE) |
            'fixed' (naive shared expert, weight 1) | 'none'), ``targets`` (only for
            'linear'; default ('qkv', 'proj', 'fc1', 'fc2')), ``blocks`` (None = all blocks,
            or block indices), ``stages`` (None; a ViT has one stage), ``active_experts``
            (None, or a stated ``k + S`` to check),
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
            ``task_specific_experts`` (True); TaskMoE ``num_experts`` (8), ``top_k`` (1),
            ``gating`` ('task_router' | 'task_embedding' | 'task_level'), ``gate_norm``
            ('topk' | 'all'),
            ``init_noise`` (0.0). Default: None (plain MLPs).
        pretrained (str, optional): Local path of a timm ViT state dict (``.pth``/``.pt`` or
            ``.safetensors``, optionally under a ``state_dict``/``model`` key), loaded by
            :meth:`init_weights` (building never reads it). Keys must match the architecture
            exactly (the classifier ``head.*`` is dropped); ``pos_embed`` is resampled to the
            training grid. Default: None (timm-style random init).
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
        with_cp (bool): Activation checkpointing of every block in training (mmseg's name):
            the blocks' activations are recomputed in the backward pass; same gradients.
            Default: False.
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
                 with_cp: bool = False,
                 multitask_mode: str = 'batched',
                 record_routing: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(tasks, multitask_mode, record_routing, init_cfg)
        settings = parse_arch(arch)
        self.embed_dims = int(settings['embed_dims'])
        self.num_layers = int(settings['num_layers'])
        self.img_size = to_2tuple(img_size, 'img_size')
        if not isinstance(patch_size, int) or patch_size < 1:
            raise ValueError(f'patch_size={patch_size!r} must be a positive int')
        self.patch_size = patch_size
        self.grid_size = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        if min(self.grid_size) < 1:
            raise ValueError(f'img_size={self.img_size} is smaller than patch_size={patch_size}')
        self.out_indices = self._parse_out_indices(out_indices)
        self.final_norm = final_norm
        # checked before any heavy work
        cfgs = parse_adapter_configs(self.tasks, adapter, lora, mlp_moe, task_embedding,
                                     int(self.embed_dims * float(settings['mlp_ratio'])))
        if pretrained is not None and not isinstance(pretrained, str):
            raise TypeError(f'pretrained must be a path or None, got {pretrained!r}')

        # the plain ViT, timm names
        self.patch_embed = PatchEmbed(patch_size, self.embed_dims)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, 1 + self.grid_size[0] * self.grid_size[1], self.embed_dims))
        self.norm_pre = nn.Identity()
        rates = torch.linspace(0, drop_path_rate, self.num_layers).tolist()
        self.blocks = nn.ModuleList([
            Block(self.embed_dims, int(settings['num_heads']), float(settings['mlp_ratio']), rate)
            for rate in rates
        ])
        self.norm = nn.LayerNorm(self.embed_dims, eps=1e-6)
        self._init_plain_weights()

        # the injector: LoRA, FFN-level experts, routed experts, task embeddings; freezing
        self._adapt(self, layout_for(self), cfgs, pretrained, 'pretrained', trainable, frozen,
                    with_cp, record_routing)

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

    def _init_plain_weights(self) -> None:
        """timm-style init of the plain ViT (replaced by ``pretrained`` at init_weights)."""
        trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    # ------------------------------------------------------------------------------------------
    # the two halves of a forward (the multi-task pass composes them)
    def _embed(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """``(N, 3, H, W)`` -> tokens ``(N, 1 + h * w, C)`` with position embeddings, grid."""
        if inputs.dim() != 4:
            raise ValueError(f'inputs must be (N, C, H, W), got shape {tuple(inputs.shape)}')
        x, grid = self.patch_embed(inputs)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x + resize_pos_embed(self.pos_embed, grid, self.grid_size), grid

    def _encode(self, x: torch.Tensor, grid: Tuple[int, int]) -> Tuple[torch.Tensor]:
        x = self.norm_pre(x)  # the task embedding's hook
        outs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == self.num_layers - 1 and self.final_norm:
                x = self.norm(x)
            if i in self.out_indices:
                out = x[:, 1:].reshape(x.shape[0], grid[0], grid[1], -1)
                outs.append(out.permute(0, 3, 1, 2).contiguous())
        return tuple(outs)
