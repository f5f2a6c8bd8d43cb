"""Reading a pretrained state dict from a local file (the one reader every layout uses)."""
import os.path as osp

import torch


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
