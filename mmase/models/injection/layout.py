"""Layouts: where a backbone family keeps what the injector needs, one class per family.

A layout tells, for one built backbone, its blocks in order (and the stage of each), where each
block's FFN branch, attention linears and MLP linears are, where the first stage's tokens are
formed (the module whose output gets the task embedding), the width of those tokens, and how
its pretrained checkpoints load. The injector (:mod:`.injector`) needs nothing else, so a new
backbone family is one :class:`Layout` subclass registered for its class name with
:func:`register_layout` (see :mod:`.beit_layout` for a whole one in a few dozen lines).

Registered: ``ASEViT`` (the timm-named ViT, :mod:`.timm_vit_layout`), mmseg's
``SwinTransformer``, ``MixVisionTransformer``, ``VisionTransformer`` (:mod:`.mmseg_layouts`),
``BEiT`` and ``MAE`` (:mod:`.beit_layout`).
"""
import re
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch.nn as nn

#: Backbone class name -> layout class.
LAYOUTS: Dict[str, type] = {}


def register_layout(*names: str):
    """Class decorator: register a layout for the backbone classes ``names``."""

    def decorator(cls):
        for name in names:
            LAYOUTS[name] = cls
        return cls

    return decorator


def layout_for(backbone: nn.Module, field: str = 'backbone.type') -> 'Layout':
    """The layout of a built backbone; ``field`` names the config key in the error."""
    name = type(backbone).__name__
    if name not in LAYOUTS:
        raise ValueError(f'{field}={name!r} has no layout (its blocks, FFNs, attention, tokens '
                         f'and checkpoints); registered: {sorted(LAYOUTS)} (add one with '
                         f'mmase.models.injection.register_layout)')
    return LAYOUTS[name](backbone)


class FFNSite(NamedTuple):
    """The FFN branch of a block: the module computing ``FFN(x')`` whose output the block adds
    to its residual stream (experts go beside it), its widths and its tensor layout."""
    name: str
    in_features: int
    out_features: int
    channels_first: bool = False


class LinearSite(NamedTuple):
    """A named linear of a block: ``kind`` 'linear' (an ``nn.Linear`` at ``name``) or 'packed'
    (an ``nn.MultiheadAttention`` at ``name`` holding ``target`` in its packed weights)."""
    name: str
    kind: str
    target: str


class Layout:
    """Base layout. Subclasses set the class attributes and override what differs.

    Attributes:
        token_module (str): Submodule whose output (``token_hook='output'``) or first input
            (``'input'``) holds the first stage's tokens ``(N, L, C)`` (a tensor, or a tuple
            whose first item is the tokens): the task embedding is added there.
        block_pattern (str): Regular expression matching the full name of every block.
        stage_pattern (str | None): Regular expression with one group, the stage index, matched
            at the start of a module name; None: one stage.
    """

    token_module = ''
    token_hook = 'output'
    block_pattern = ''
    stage_pattern: Optional[str] = None

    def __init__(self, backbone: nn.Module):
        self.backbone = backbone

    @property
    def name(self) -> str:
        return type(self.backbone).__name__

    # ------------------------------------------------------------------------------------------
    # structure
    def blocks(self) -> List[Tuple[str, int]]:
        """``(block name, stage index)`` of every block, in forward order."""
        return [(name, self.stage_of(name)) for name, _ in self.backbone.named_modules()
                if name and re.fullmatch(self.block_pattern, name)]

    def stage_of(self, module_name: str) -> int:
        if self.stage_pattern is None:
            return 0
        match = re.match(self.stage_pattern, module_name)
        return -1 if match is None else int(match.group(1))

    def num_stages(self) -> int:
        return 1 + max(stage for _, stage in self.blocks())

    def token_dims(self) -> int:
        raise NotImplementedError

    def ffn(self, block: str) -> Optional[FFNSite]:
        """The FFN branch of ``block`` (None: the block has none the layout recognises)."""
        raise NotImplementedError

    def linear(self, block: str, target: str) -> Optional[LinearSite]:
        """Where ``target`` ('qkv', 'proj', 'fc1', 'fc2') of ``block`` is (None: not here)."""
        raise NotImplementedError

    def mlp(self, block: str) -> Optional[Tuple[str, nn.Linear, nn.Linear, nn.Module]]:
        """``(name, fc1, fc2, act)`` of the MLP an FFN-level expert layer replaces (None: the
        family's FFN is not a two-linear MLP)."""
        return None

    # ------------------------------------------------------------------------------------------
    # selection
    def select_blocks(self, blocks: Optional[Sequence[int]], stages: Optional[Sequence[int]],
                      field: str) -> List[str]:
        """The block names selected by ``blocks`` (indices over all blocks, negative from the
        end) and ``stages`` (stage indices); None = all. ``field`` prefixes the errors."""
        all_blocks = self.blocks()
        count, num_stages = len(all_blocks), self.num_stages()
        chosen = set(range(count))
        if blocks is not None:
            for index in blocks:
                if not -count <= index < count:
                    raise ValueError(f'{field}.blocks: {index!r} is not a block index of this '
                                     f'{count}-block {self.name}')
            chosen &= {i % count for i in blocks}
        if stages is not None:
            for index in stages:
                if not 0 <= index < num_stages:
                    raise ValueError(f'{field}.stages: {index!r} is not a stage of this '
                                     f'{self.name} ({num_stages} stage(s): 0..{num_stages - 1})')
            chosen &= {i for i, (_, stage) in enumerate(all_blocks) if stage in stages}
        if not chosen:
            raise ValueError(f'{field}: blocks={blocks} and stages={stages} select no block of '
                             f'this {self.name}')
        return [all_blocks[i][0] for i in sorted(chosen)]

    # ------------------------------------------------------------------------------------------
    # checkpoints
    def load_pretrained(self, plain, path: str, field: str) -> None:
        """Load the local file ``path`` (named by the config field ``field``) into ``plain``,
        a view of the backbone with its pre-injection keys (:class:`.plain_view.PlainView`)."""
        raise NotImplementedError
