"""Packing a multi-task sample into the model's input format (the mmase data contract)."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData
from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample

from .geometric import task_maps

#: Meta keys whose absence means "this transform did not run", with the value that says so.
_META_DEFAULTS = dict(scale_factor=(1.0, 1.0), flip=False, flip_direction=None)


@TRANSFORMS.register_module()
class PackMultiTaskInputs(BaseTransform):
    """Pack image, task maps and meta information into ``dict(inputs, data_samples)``.

    Output (the mmase data contract):

    - ``inputs``: uint8 tensor (3, H, W), BGR, the image as the pipeline left it.
    - ``data_samples``: a :class:`SegDataSample` with, for every key of
      ``results['task_fields']``, ``gt_<field> = PixelData(data=tensor)``:
      segmentation/binary maps int64 (1, H, W) with 255 = ignore; normals float32 (3, H, W),
      all-zero = invalid; depth float32 (1, H, W), 0 = invalid; a declared task
      ``(channels, H, W)``, float32 if ``is_float`` else int64.
    - metainfo: the ``meta_keys`` present in ``results``. ``pad_shape`` defaults to
      ``img_shape``, ``scale_factor`` to (1.0, 1.0), ``flip`` to False and ``flip_direction``
      to None when no transform set them (no padding / resizing / flipping happened).

    Args:
        meta_keys (Sequence[str]): Keys copied into the metainfo. Defaults to
            ('img_path', 'img_id', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor',
            'flip', 'flip_direction', 'tasks').
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_path', 'img_id', 'ori_shape', 'img_shape',
                                             'pad_shape', 'scale_factor', 'flip',
                                             'flip_direction', 'tasks')) -> None:
        self.meta_keys = tuple(meta_keys)

    @staticmethod
    def _to_tensor(arr: np.ndarray, spec) -> torch.Tensor:
        if spec.channels > 1:  # (H, W, C) maps, e.g. normals
            if arr.ndim != 3 or arr.shape[2] != spec.channels:
                raise ValueError(f'{spec.gt_field} must be (H, W, {spec.channels}), got '
                                 f'{arr.shape}')
            out = arr.astype(np.float32 if spec.is_float else np.int64).transpose(2, 0, 1)
        else:
            if arr.ndim != 2:
                raise ValueError(f'{spec.gt_field} must be (H, W), got {arr.shape}')
            out = arr[None].astype(np.float32 if spec.is_float else np.int64)
        return torch.from_numpy(np.ascontiguousarray(out))

    def transform(self, results: dict) -> dict:
        """Pack ``results``; see the class docstring."""
        packed = dict()
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        packed['inputs'] = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))

        data_sample = SegDataSample()
        for key, spec in task_maps(results):
            data_sample.set_data({key: PixelData(data=self._to_tensor(results[key], spec))})

        meta = {}
        for key in self.meta_keys:
            if key in results:
                meta[key] = results[key]
            elif key == 'pad_shape' and 'img_shape' in results:
                meta[key] = results['img_shape']
            elif key in _META_DEFAULTS:
                meta[key] = _META_DEFAULTS[key]
        data_sample.set_metainfo(meta)
        packed['data_samples'] = data_sample
        return packed

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
