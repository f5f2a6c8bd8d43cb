"""AdaptedBackbone: a plain backbone plus the injector, behind the multi-task interface.

The one class path of every adapted family: the subclass builds the plain backbone (timm-named
ViT: :class:`~.ase_vit.ASEViT`; any mmseg family with a layout:
:class:`~.task_routed_backbone.TaskRoutedBackbone`) and calls :meth:`_adapt`, which parses the
typed adapter configs, records the pre-injection keys when a pretrained file is named, injects,
reports the routed families, freezes the base and, with ``with_cp``, checkpoints every block
the layout lists. Pretrained weights load in
:meth:`init_weights` (OpenMMLab's convention: building a model never reads the file; training
does, and refuses a missing one naming it); FFN-level expert layers are then rebuilt from the
loaded MLP, so FGMoE's and Task-MoE's experts start from the pretrained weights.
"""
import re
from typing import Optional, Sequence, Set, Tuple

import torch
import torch.nn as nn

from ..adapters import LoRAExperts
from ..injection import (AdapterConfigs, Injection, Layout, PlainView, adapter_parameters,
                         checkpoint_blocks, inject)
from .multitask_backbone import MultiTaskBackbone


class AdaptedBackbone(MultiTaskBackbone):
    """Base of the adapted backbones (see the module docstring); subclasses call
    :meth:`_adapt` once their plain backbone exists.

    Attributes:
        adapter_configs (AdapterConfigs): What was injected (typed).
        layout (Layout): The plain backbone's layout.
        adapter_names, lora_names, mlp_moe_names (list[str]): Wrapped / replaced modules,
            relative to the plain backbone.
    """

    def _adapt(self, root: nn.Module, layout: Layout, cfgs: AdapterConfigs,
               pretrained: Optional[str], pretrained_field: str, trainable: Sequence[str] = (),
               frozen: bool = False, with_cp: bool = False, record_routing: bool = False,
               prefix: str = '') -> None:
        self.layout = layout
        self.adapter_configs = cfgs
        self.frozen = _check_frozen(frozen, trainable, cfgs)
        if not isinstance(with_cp, bool):
            raise TypeError(f'with_cp must be True or False, got {with_cp!r}')
        self.with_cp = with_cp
        self._pretrained = (pretrained, pretrained_field)
        self._plain = PlainView(root, layout.name) if pretrained is not None else None
        self._injection: Injection = inject(self, root, layout, cfgs, self.task_context,
                                            record_routing)
        if self._plain is not None:
            self._plain.bind()
        self._root_prefix = prefix
        if with_cp:
            checkpoint_blocks([root.get_submodule(name) for name, _ in layout.blocks()],
                              self.task_context)
        adapter, mlp_moe = cfgs.adapter, cfgs.mlp_moe
        self.routed_families = self._injection.families(
            prefix,
            (0.0, 0.0) if adapter is None else (adapter.load_balance_weight,
                                                adapter.mi_loss_weight),
            (0.0, 0.0) if mlp_moe is None else (mlp_moe.load_balance_weight,
                                                mlp_moe.mi_loss_weight))
        self.trainable_patterns = tuple(trainable)
        self._trainable_names = set() if self.frozen else self._select_trainable(root, prefix)
        self._apply_freeze()

    # ------------------------------------------------------------------------------------------
    @property
    def adapter_names(self):
        return self._injection.adapter_names

    @property
    def lora_names(self):
        return self._injection.lora_names

    @property
    def mlp_moe_names(self):
        return self._injection.mlp_moe_names

    @property
    def task_embedding_tasks(self) -> Tuple[str, ...]:
        """The tasks that have a task embedding row (in ``tasks`` order)."""
        return self.adapter_configs.task_embedding.tasks

    @property
    def task_agnostic(self) -> bool:
        """No router and no task embedding: every task gets the same features (one pass)."""
        return (self.task_embed is None and not self.mlp_moe_names
                and all(m.router is None for m in self.modules() if isinstance(m, LoRAExperts)))

    # ------------------------------------------------------------------------------------------
    # task embedding (installed by the injector on the layout's token module)
    def _embedding_for(self, tokens: torch.Tensor) -> torch.Tensor:
        table = torch.cat([self.task_embed, self.task_embed.new_zeros(1, tokens.shape[-1])])
        embedding = table[self._task_embed_row[self.task_context.current()]]
        return embedding.view(1, 1, -1) if embedding.dim() == 1 else embedding[:, None]

    def _add_task_embedding(self, module, args, output):
        """Forward hook: ``x_t = x + e_t`` on the first stage's tokens ``(N, L, C)``."""
        tokens = output[0] if isinstance(output, tuple) else output
        tokens = tokens + self._embedding_for(tokens)
        return (tokens, *output[1:]) if isinstance(output, tuple) else tokens

    def _add_task_embedding_to_input(self, module, args):
        """Forward pre-hook: the same on the module's first input."""
        return (args[0] + self._embedding_for(args[0]), *args[1:])

    # ------------------------------------------------------------------------------------------
    # freezing
    def _select_trainable(self, root: nn.Module, prefix: str) -> Set[str]:
        """Experts, routers, LoRA, task embeddings, the trainable parts of FFN-level expert
        layers, and the ``trainable`` patterns."""
        selected = {prefix + n for n in adapter_parameters(root)}
        selected.update(prefix + n for n in self._injection.layer_trainable)
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
    # weights
    def init_weights(self) -> None:
        """Load the pretrained file named at build (strict, through the layout) into the
        wrapped backbone, then rebuild the FFN-level expert layers from the loaded MLPs. The
        plain backbone was initialised at build; adapters initialise themselves (``B = 0``)."""
        if self._plain is not None:
            path, field = self._pretrained
            self.layout.load_pretrained(self._plain, path, field)
            self._rebuild_mlp_moe()
            self._plain = None
            self._apply_freeze()
        self._is_init = True

    def _rebuild_mlp_moe(self) -> None:
        moe = self.adapter_configs.mlp_moe
        root = self.get_submodule(self._root_prefix.rstrip('.')) if self._root_prefix else self
        for name, (fc1, fc2, act) in self._injection.replaced_mlps.items():
            layer = root.get_submodule(name)
            fresh = moe.build(fc1, fc2, act, self.adapter_configs.num_tasks)
            layer.load_state_dict(fresh.state_dict())


def _check_frozen(frozen: bool, trainable: Sequence[str], cfgs: AdapterConfigs) -> bool:
    if not isinstance(frozen, bool):
        raise TypeError(f'frozen must be True or False, got {frozen!r}')
    if not frozen:
        return False
    if tuple(trainable):
        raise ValueError(f'frozen=True freezes the whole backbone but trainable='
                         f'{tuple(trainable)} asks to train some of it; use one or the other')
    for field, cfg in (('adapter', cfgs.adapter), ('mlp_moe', cfgs.mlp_moe)):
        for key in ('load_balance_weight', 'mi_loss_weight'):
            if cfg is not None and getattr(cfg, key) > 0:
                raise ValueError(f'frozen=True trains no router, so {field}.{key}='
                                 f'{getattr(cfg, key)} has nothing to train; set it to 0')
    return True
