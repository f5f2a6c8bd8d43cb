"""Merging plain LoRA into the frozen weights it adapts (PEFT's ``merge`` / ``unmerge``).

Plain LoRA has constant gates, so its whole effect is one delta matrix per adapted weight,
``(alpha / r) B A``; folding it into the frozen weight gives the same outputs with the adapter
path skipped (inference of the shared baselines at the cost of the plain model). Routed experts
have token-dependent gates and cannot be merged.

While merged: the forward reads only the frozen weights; training is refused (the adapter's
factors would no longer reach the output); ``state_dict`` still holds the *unmerged* weights, so
a checkpoint saved from a merged model loads into an unmerged one unchanged. ``unmerge``
subtracts exactly the delta that was added.
"""
from typing import Callable, List, Optional, Tuple

import torch
import torch.nn as nn

#: (state-dict key relative to the module, the frozen weight, function giving its delta)
MergeTarget = Tuple[str, nn.Parameter, Callable[[], torch.Tensor]]


class MergeableLoRA:
    """Mixin of an adapter module whose delta weights can be folded into its frozen weights.

    A subclass calls :meth:`_init_merge` in ``__init__``, lists its weights in
    :meth:`_merge_targets` and calls :meth:`_check_merged_use` at the top of ``forward``.
    """

    def _init_merge(self) -> None:
        #: the deltas folded in by :meth:`merge`, None when unmerged
        self._merged_deltas: Optional[List[Tuple[str, nn.Parameter, torch.Tensor]]] = None
        self.register_state_dict_post_hook(_unmerged_state_dict)

    def _merge_targets(self) -> List[MergeTarget]:
        raise NotImplementedError

    @property
    def merged(self) -> bool:
        """Whether the deltas are folded into the frozen weights now."""
        return self._merged_deltas is not None

    def merge(self) -> None:
        """Fold every delta into its frozen weight (no-op when merged already)."""
        if self.merged:
            return
        deltas = []
        with torch.no_grad():
            for key, weight, delta_fn in self._merge_targets():
                delta = delta_fn().detach().to(weight.dtype).clone()
                weight.add_(delta)
                deltas.append((key, weight, delta))
        self._merged_deltas = deltas

    def unmerge(self) -> None:
        """Subtract the deltas :meth:`merge` added (no-op when not merged)."""
        if not self.merged:
            return
        with torch.no_grad():
            for _, weight, delta in self._merged_deltas:
                weight.sub_(delta)
        self._merged_deltas = None

    def _check_merged_use(self) -> None:
        if self.merged and self.training and torch.is_grad_enabled():
            raise RuntimeError(f'{type(self).__name__} is merged (LoRA folded into the frozen '
                               f'weights, for inference): call unmerge() before training')


def _unmerged_state_dict(module: MergeableLoRA, state_dict: dict, prefix: str,
                         local_metadata) -> None:
    """State-dict post hook: save the frozen weights without the merged deltas."""
    for key, _, delta in module._merged_deltas or ():
        name = prefix + key
        if name in state_dict:
            state_dict[name] = state_dict[name].detach() - delta


def merge_lora(model: nn.Module) -> List[str]:
    """Merge every plain-LoRA module of ``model`` (routed experts are left as they are).

    Returns:
        list[str]: Names of the merged modules.
    """
    names = []
    for name, module in model.named_modules():
        if isinstance(module, MergeableLoRA) and module.mergeable:
            module.merge()
            names.append(name)
    return names


def unmerge_lora(model: nn.Module) -> List[str]:
    """Unmerge every merged LoRA module of ``model``; returns their names."""
    names = []
    for name, module in model.named_modules():
        if isinstance(module, MergeableLoRA) and module.merged:
            module.unmerge()
            names.append(name)
    return names
