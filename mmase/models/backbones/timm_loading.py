"""Strict loading of a local timm ViT state dict into a plain (not yet adapted) ViT."""
import os.path as osp
from typing import Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log

from .vit_layers import resize_pos_embed

#: Checkpoint keys of the classification head, dropped when loading a backbone.
CLASSIFIER_PREFIXES = ('head.', 'head_drop.')


def read_state_dict(path: str) -> dict:
    """Read a ``.pth``/``.pt`` (through mmase's allowlisted ``weights_only=True`` reader, which
    names the file and the problem when it refuses one) or ``.safetensors`` state dict,
    unwrapping a ``state_dict`` / ``model`` key.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file does not hold a state dict of tensors.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'pretrained: checkpoint file not found: {path}')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        state = load_file(path, device='cpu')
    else:  # the allowlisted weights_only reader of every checkpoint mmase loads
        from mmase.engine.checkpoint_check import load_checkpoint_file
        state = load_checkpoint_file(path, map_location='cpu')
    for key in ('state_dict', 'model'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f'pretrained={path}: expected a state dict of tensors')
    return state


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


def load_timm_vit(vit: nn.Module, path: str, grid: Tuple[int, int], embed_dims: int,
                  description: str) -> None:
    """Load a timm ViT state dict into ``vit`` with a strict key and shape check.

    The classifier (``head.*``) is dropped; ``pos_embed`` is resampled to ``grid``.

    Args:
        vit (nn.Module): The plain ViT (timm parameter names, no adapters yet).
        path (str): Local checkpoint path.
        grid (tuple[int, int]): Training patch grid ``(h, w)``.
        embed_dims (int): Token width (to tell a resampling from a mismatch).
        description (str): What ``vit`` is, for messages (e.g. ``'768 dims, 12 layers'``).

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
        raise ValueError(f'pretrained={path} does not match this ViT ({description}): missing '
                         f'keys {missing}, unexpected keys {unexpected}')
    if 'pos_embed' in state:
        state['pos_embed'] = _checkpoint_pos_embed(state['pos_embed'], grid, embed_dims, path)
    mismatched = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}'
                  for k, v in own.items() if state[k].shape != v.shape]
    if mismatched:
        raise ValueError(f'pretrained={path} does not match this ViT: shape mismatch in '
                         + '; '.join(mismatched))
    vit.load_state_dict(state, strict=True)
    print_log(f'{type(vit).__name__}: loaded {path}' +
              (f' (dropped classifier keys {dropped})' if dropped else ''), logger='current')
