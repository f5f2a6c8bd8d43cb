"""Task-routed LoRA experts beside a frozen FFN: the paper's placement of ASE.

Li et al., 2025 (ASE, arXiv 2510.00570), Sec. 3 and Fig. 1: the LoRA-MoE sits in each FFN
layer next to the frozen FFN ``W0``; experts and router read the FFN's input ``x'`` and write
the block's width, and the block computes

    y = x + FFN(x') + (alpha / r) * sum_{i in I ∪ shared} g_i B_i A_i x'

(``x' = norm2(x)`` in a pre-norm ViT block, so the FFN's input). One expert set and one router
per task per block; ``(N/k/S/r)`` as in :mod:`~mmase.models.adapters.moe_lora`.

The layer takes the FFN's place in the block (``blocks.i.mlp``) and adopts the FFN's
submodules under their own names, so the frozen weights keep their timm names
(``blocks.i.mlp.fc1.weight``) and pretrained checkpoints still load by name. The experts are
``blocks.i.mlp.experts.{lora_A, lora_B, router.weight}``.
"""
from typing import Callable, Dict, Optional

import torch
import torch.nn as nn
from mmseg.registry import MODELS

from .moe_lora import LoRAExperts
from .routers import TaskIndex


@MODELS.register_module()
class MoELoRAFFN(nn.Module):
    """A frozen FFN plus task-routed LoRA experts beside it (``y = FFN(x) + delta(x)``).

    Args:
        ffn (nn.Module): The FFN to wrap (``ffn(x)``); frozen in place, not copied. Its submodules are
            registered under their own names on this layer.
        in_features (int, optional): Width of the FFN's input; read from ``ffn.fc1`` when
            None. Default: None.
        out_features (int, optional): Width of the FFN's output; read from ``ffn.fc2`` when
            None. Default: None.
        channels_first (bool): The FFN maps ``(N, C, H, W)`` maps (a convolutional FFN such as
            SegFormer's ``MixFFN.layers``): the experts read the input as ``(N, H*W, C)``
            tokens and their output is laid back as ``(N, C, H, W)`` before it is added.
            Default: False (tokens ``(N, *, C)``).
        task_source (Callable[[], int | Tensor], optional): Where the task index comes from
            when the host calls ``layer(x)`` without one (a wrapped mmseg backbone, whose
            modules call their FFN with ``x`` only): e.g. a
            :class:`~mmase.models.injection.TaskContext`'s ``current`` (the injector hands
            the task through a forward pre-hook instead). Default:
            None (the task must be passed).
        **kwargs: Expert configuration of :class:`~mmase.models.adapters.LoRAExperts`
            (``num_tasks``, ``num_experts`` = N including the shared ones, ``top_k``,
            ``num_shared``, ``rank``, ``alpha``, ``shared_gating``, ``load_balance``,
            ``mutual_information``, ``record_routing``).

    Shapes: ``x`` ``(N, *, d_in)`` (``(N, d_in, H, W)`` with ``channels_first``), ``task`` int
    or LongTensor ``(N,)`` -> ``(N, *, d_out)`` (``(N, d_out, H, W)``).
    """

    #: Parameters holding expert weights (for parameter budgets; routers are separate).
    expert_parameter_names = ('experts.lora_A', 'experts.lora_B')

    def __init__(self, ffn: nn.Module, in_features: Optional[int] = None,
                 out_features: Optional[int] = None, channels_first: bool = False,
                 task_source: Optional[Callable[[], TaskIndex]] = None, **kwargs):
        super().__init__()
        self.channels_first = bool(channels_first)
        # a plain callable, not a submodule (it may be a bound method of the host)
        self.__dict__['_task_source'] = task_source
        if not isinstance(ffn, nn.Module):
            raise TypeError(f'MoELoRAFFN wraps an nn.Module FFN, got {type(ffn).__name__}')
        if in_features is None or out_features is None:
            fc1, fc2 = getattr(ffn, 'fc1', None), getattr(ffn, 'fc2', None)
            if not (isinstance(fc1, nn.Linear) and isinstance(fc2, nn.Linear)):
                raise ValueError(f'{type(ffn).__name__} has no nn.Linear fc1/fc2 to read its '
                                 f'widths from; pass in_features and out_features')
            in_features = fc1.in_features if in_features is None else in_features
            out_features = fc2.out_features if out_features is None else out_features
        if list(ffn.named_parameters(recurse=False)):
            raise ValueError(f'{type(ffn).__name__} holds parameters of its own (not in '
                             f'submodules); MoELoRAFFN can only adopt submodules')
        for param in ffn.parameters():
            param.requires_grad_(False)
        for name, child in ffn.named_children():
            if name == 'experts':
                raise ValueError(f"{type(ffn).__name__} has a submodule named 'experts', "
                                 f'which this layer needs for its own experts')
            self.add_module(name, child)
        # The FFN itself is not registered (its children are, above): its forward computes the
        # frozen path and its parameters keep their names.
        self.__dict__['_ffn'] = ffn
        first = next(ffn.parameters(), None)
        factory = {} if first is None else dict(device=first.device, dtype=first.dtype)
        self.experts = LoRAExperts(in_features, out_features, **kwargs, **factory)

    @property
    def ffn(self) -> nn.Module:
        """The wrapped FFN (its submodules are this layer's)."""
        return self._ffn

    def forward(self, x: torch.Tensor, task: Optional[TaskIndex] = None) -> torch.Tensor:
        if task is None:
            if self._task_source is None:
                raise TypeError(f'{type(self).__name__} needs a task index: pass one, or build '
                                f'it with a task_source')
            task = self._task_source()
        if self.channels_first and x.dim() != 4:
            raise ValueError(f'channels_first {type(self).__name__} expects (N, C, H, W) maps, '
                             f'got shape {tuple(x.shape)}')
        ffn = self._ffn
        base = ffn(x)
        if not self.channels_first:
            return base + self.experts(x, task)
        n, _, h, w = x.shape
        delta = self.experts(x.flatten(2).transpose(1, 2), task)  # (N, H*W, d_out)
        return base + delta.transpose(1, 2).reshape(n, -1, h, w)

    # The routing interface of a routed layer, forwarded to the experts.
    @property
    def num_tasks(self) -> int:
        return self.experts.num_tasks

    @property
    def num_shared(self) -> int:
        return self.experts.num_shared

    @property
    def num_experts(self) -> int:
        return self.experts.num_experts

    @property
    def record_routing(self) -> bool:
        return self.experts.record_routing

    @record_routing.setter
    def record_routing(self, enabled: bool) -> None:
        self.experts.record_routing = enabled

    def pop_load_balance(self):
        return self.experts.pop_load_balance()

    def pop_mutual_information(self) -> Optional[torch.Tensor]:
        return self.experts.pop_mutual_information()

    def routing_stats(self) -> Optional[Dict[str, torch.Tensor]]:
        """See :meth:`~mmase.models.adapters.LoRAExperts.routing_stats`."""
        return self.experts.routing_stats()

    def reset_routing_stats(self) -> None:
        self.experts.reset_routing_stats()
