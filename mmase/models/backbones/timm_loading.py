"""Strict loading of a local timm ViT state dict into a plain (not yet adapted) ViT."""
from typing import Tuple

import torch
from mmengine.logging import print_log

from ..injection.state_files import read_state_dict
from .vit_layers import resize_pos_embed

#: Checkpoint keys of the classification head, dropped when loading a backbone.
CLASSIFIER_PREFIXES = ('head.', 'head_drop.')


def _checkpoint_pos_embed(pos_embed: torch.Tensor, grid: Tuple[int, int], embed_dims: int,
                          path: str) -> torch.Tensor:
    """Resample a checkpoint's (square-grid) position embedding to the training grid."""
    if pos_embed.dim() != 3 or pos_embed.shape[-1] != embed_dims:
        return pos_embed  # reported as a shape mismatch
    side = int(round((pos_embed.shape[1] - 1)**0.5))
    if side * side != pos_embed.shape[1] - 1:
        raise ValueError(f'pretrained={path}: pos_embed has {pos_embed.shape[1]} tokens, '
                         f'not 1 class token + a square grid')
    return resize_pos_embed(pos_embed.float(), grid, (side, side)).to(pos_embed.dtype)


def load_timm_vit(vit, path: str, grid: Tuple[int, int], embed_dims: int,
                  description: str, field: str = 'pretrained') -> None:
    """Load a timm ViT state dict into ``vit`` with a strict key and shape check.

    The classifier (``head.*``) is dropped; ``pos_embed`` is resampled to ``grid``.

    Args:
        vit (nn.Module | PlainView): The plain ViT (timm parameter names), or a
            :class:`~mmase.models.injection.PlainView` of it after injection.
        path (str): Local checkpoint path.
        grid (tuple[int, int]): Training patch grid ``(h, w)``.
        embed_dims (int): Token width (to tell a resampling from a mismatch).
        description (str): What ``vit`` is, for messages (e.g. ``'768 dims, 12 layers'``).
        field (str): The config field that named the file.

    Raises:
        FileNotFoundError, ValueError: missing file; missing / unexpected keys or mismatched
        shapes (all listed).
    """
    state = read_state_dict(path)
    dropped = sorted(k for k in state if k.startswith(CLASSIFIER_PREFIXES))
    state = {k: v for k, v in state.items() if k not in dropped}
    own = vit.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f'{field}={path} does not match this ViT ({description}): missing '
                         f'keys {missing}, unexpected keys {unexpected}')
    if 'pos_embed' in state:
        state['pos_embed'] = _checkpoint_pos_embed(state['pos_embed'], grid, embed_dims, path)
    mismatched = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}'
                  for k, v in own.items() if state[k].shape != v.shape]
    if mismatched:
        raise ValueError(f'{field}={path} does not match this ViT: shape mismatch in '
                         + '; '.join(mismatched))
    vit.load_state_dict(state, strict=True)
    print_log(f'ViT ({description}): loaded {path}' +
              (f' (dropped classifier keys {dropped})' if dropped else ''), logger='current')
