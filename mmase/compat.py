"""Compatibility layer imported before anything else in :mod:`mmase`.

1. ``mmcv.ops`` fallback. mmseg 1.2.2 imports ``point_sample`` and ``sigmoid_focal_loss`` from
   ``mmcv.ops`` at import time. ``mmcv-lite`` ships the Python files of ``mmcv.ops`` but not the
   compiled ``mmcv._ext``, so that import fails. When (and only when) the compiled ops are missing,
   a small pure-PyTorch ``mmcv.ops`` module is installed in ``sys.modules``. With a full mmcv
   build the real ops are imported and used unchanged.
2. Safe checkpoint loading. With torch >= 2.6 ``torch.load`` defaults to ``weights_only=True``;
   mmengine checkpoints carry numpy scalars/arrays and ``HistoryBuffer`` objects in their meta.
   Those few types are allow-listed with ``torch.serialization.add_safe_globals`` so mmengine
   checkpoints load under ``weights_only=True``; anything else in a pickle is still refused.
3. Quiet imports. On mmcv-lite, ``mmcv.cnn.bricks.transformer`` warns at import that
   ``MultiScaleDeformableAttention`` (a compiled op no mmase model uses) is missing; that module
   is imported here once with that one warning suppressed. mmseg's ``build_loss`` deprecation
   warning (raised by mmseg's own decode heads at every build) is filtered by its message. Other
   warnings are left alone (docs/faq.md lists them).
"""
import pickle
import sys
import types
import warnings

import torch
import torch.nn.functional as F

#: True when ``mmcv.ops`` is the pure-PyTorch fallback below.
MMCV_OPS_FALLBACK = False


def _point_sample(input, points, align_corners=False, **kwargs):
    """Sample ``input`` (N, C, H, W) at ``points`` (N, P, 2) or (N, Hp, Wp, 2) given in [0, 1]
    (x, y) coordinates; returns (N, C, P) or (N, C, Hp, Wp). Bilinear, zero padding."""
    add_dim = points.dim() == 3
    if add_dim:
        points = points.unsqueeze(2)
    out = F.grid_sample(input, 2.0 * points - 1.0, align_corners=align_corners, **kwargs)
    return out.squeeze(3) if add_dim else out


def _sigmoid_focal_loss(input, target, gamma=2.0, alpha=0.25, weight=None, reduction='mean'):
    """Sigmoid focal loss with mmcv's semantics: ``input`` (N, C) logits, ``target`` (N,) class
    indices (C means background), ``weight`` (N,) per sample; 'mean' divides the sum by N."""
    num_classes = input.size(1)
    one_hot = F.one_hot(target.long().clamp(max=num_classes), num_classes + 1)[:, :num_classes]
    one_hot = one_hot.type_as(input)
    prob = input.sigmoid()
    ce = F.binary_cross_entropy_with_logits(input, one_hot, reduction='none')
    p_t = prob * one_hot + (1 - prob) * (1 - one_hot)
    alpha_t = alpha * one_hot + (1 - alpha) * (1 - one_hot)
    loss = alpha_t * (1 - p_t).pow(gamma) * ce
    if weight is not None:
        loss = loss * weight.view(-1, 1)
    if reduction == 'mean':
        return loss.sum() / input.size(0)
    if reduction == 'sum':
        return loss.sum()
    return loss


def _missing_compiled_op(name):
    # mmseg guards optional ops with ``except ModuleNotFoundError``; keep that contract.
    if name.startswith('__'):
        raise AttributeError(name)
    raise ModuleNotFoundError(
        f'mmcv.ops.{name} needs the compiled mmcv ops; mmase provides only '
        f'point_sample and sigmoid_focal_loss on mmcv-lite. Install a full mmcv build '
        f'to use {name}.', name='mmcv._ext')


def _install_mmcv_ops_fallback() -> bool:
    """Install the fallback ``mmcv.ops`` if the compiled one cannot be imported."""
    global MMCV_OPS_FALLBACK
    try:
        import mmcv.ops  # noqa: F401  (full mmcv: real ops)
        return False
    except ImportError as err:  # mmcv-lite: no mmcv._ext
        if 'mmcv._ext' not in str(err) and getattr(err, 'name', None) != 'mmcv._ext':
            raise
    import mmcv
    for name in [m for m in sys.modules if m == 'mmcv.ops' or m.startswith('mmcv.ops.')]:
        del sys.modules[name]  # drop half-imported submodules of the failed import
    ops = types.ModuleType('mmcv.ops')
    ops.__doc__ = 'Pure-PyTorch fallback of the mmcv.ops names mmseg imports (installed by mmase).'
    ops.point_sample = _point_sample
    ops.sigmoid_focal_loss = _sigmoid_focal_loss
    ops.__all__ = ['point_sample', 'sigmoid_focal_loss']
    ops.MMASE_FALLBACK = True
    ops.__getattr__ = _missing_compiled_op
    sys.modules['mmcv.ops'] = ops
    mmcv.ops = ops
    MMCV_OPS_FALLBACK = True
    return True


def safe_checkpoint_globals() -> list:
    """The non-tensor types mmengine writes into checkpoints, for ``weights_only`` loading."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = [type(np.dtype(t)) for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
        np.uint64, np.float16, np.float32, np.float64)]
    return [HistoryBuffer, _reconstruct, scalar, np.ndarray, np.dtype, *dtype_classes]


#: The statistics methods HistoryBuffer pickles as ``getattr(HistoryBuffer, name)``.
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'mean', 'current')


def _history_buffer_statistic(owner, name):
    """Stand-in for ``getattr`` while unpickling: only ``HistoryBuffer.<statistic>`` is allowed.

    mmengine's ``HistoryBuffer`` pickles its statistics table as ``getattr(HistoryBuffer, 'min')``
    etc. Allowing the real ``getattr`` would let a crafted file reach any attribute of an allowed
    type (e.g. ``ndarray.tofile``), so the loader gets this restricted version instead.
    """
    from mmengine.logging import HistoryBuffer
    if owner is HistoryBuffer and name in _HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({owner!r}, {name!r}) while loading a checkpoint: only mmengine '
        f'HistoryBuffer statistics are allowed')


def _allow_mmengine_checkpoints() -> None:
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:  # torch < 2.4 loads with weights_only=False by default anyway
        return
    add(safe_checkpoint_globals())
    add([(_history_buffer_statistic, '__builtin__.getattr'),
         (_history_buffer_statistic, 'builtins.getattr')])


def _quiet_imports() -> None:
    """Import mmcv's transformer bricks without the mmcv-lite warning; filter mmseg's
    ``build_loss`` deprecation notice (mmseg's heads call it themselves)."""
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention',
                                category=UserWarning)
        try:
            import mmcv.cnn.bricks.transformer  # noqa: F401
        except ImportError:  # an mmcv without the module: nothing to silence
            pass
    warnings.filterwarnings('ignore', message='``build_loss`` would be deprecated soon',
                            category=UserWarning)


_install_mmcv_ops_fallback()
_allow_mmengine_checkpoints()
_quiet_imports()
