"""Normalise and batch images with their per-task ground-truth maps."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor
from mmengine.structures import PixelData
from mmseg.registry import MODELS

from mmase.tasks import task_spec_by_gt_field


def _pad_bottom_right(tensor: torch.Tensor, height: int, width: int,
                      value: float) -> torch.Tensor:
    """Pad a (C, h, w) tensor on the bottom and right to (C, height, width)."""
    pad_h, pad_w = height - tensor.shape[-2], width - tensor.shape[-1]
    if pad_h < 0 or pad_w < 0:
        raise ValueError(f'cannot pad a map of size {tuple(tensor.shape[-2:])} to '
                         f'{(height, width)}: it is larger (data_preprocessor.size too small?)')
    if pad_h == 0 and pad_w == 0:
        return tensor
    return F.pad(tensor, (0, pad_w, 0, pad_h), value=value)


@MODELS.register_module()
class MultiTaskDataPreProcessor(BaseDataPreprocessor):
    """Image normalisation and batching; pads every task map with its own ignore value.

    Images ``(3, H, W)`` uint8 BGR become a float batch ``(N, 3, H', W')``: optional BGR->RGB,
    ``(x - mean) / std``, bottom/right padding with ``pad_val`` to ``size`` (training), to a
    multiple of ``size_divisor`` and, always, to the largest image of the batch. Each
    ``gt_<field>`` map on the samples (any declared task's field, :mod:`mmase.tasks`) is padded the same way with its task's ignore value (255 for label maps, 0 for normals and
    depth). The padding of each sample
    is recorded in its metainfo as ``padding_size = (left, right, top, bottom)`` and
    ``pad_shape``, as mmseg does, so predictions can be cropped back.

    Args:
        mean (Sequence[float]): Per-channel mean (in the output channel order).
        std (Sequence[float]): Per-channel std.
        bgr_to_rgb (bool): Swap the channel order of 3-channel inputs. Default True.
        size (tuple[int, int], optional): Fixed (H, W) to pad to in training.
        size_divisor (int, optional): Pad H and W up to a multiple of this.
        pad_val (float): Image padding value (before normalisation is not applied to it).
        test_cfg (dict, optional): ``size`` / ``size_divisor`` used at test time instead.
    """

    def __init__(self,
                 mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375),
                 bgr_to_rgb: bool = True,
                 size: Optional[Tuple[int, int]] = None,
                 size_divisor: Optional[int] = None,
                 pad_val: float = 0.0,
                 test_cfg: Optional[dict] = None):
        super().__init__()
        if len(mean) != 3 or len(std) != 3:
            raise ValueError('data_preprocessor.mean and .std need 3 values each')
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1), False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(-1, 1, 1), False)
        self.bgr_to_rgb = bgr_to_rgb
        self.size = tuple(size) if size is not None else None
        self.size_divisor = size_divisor
        self.pad_val = pad_val
        self.test_cfg = test_cfg or {}

    def _target_size(self, sizes: List[Tuple[int, int]], training: bool) -> Tuple[int, int]:
        size = self.size if training else self.test_cfg.get('size')
        divisor = self.size_divisor if training else self.test_cfg.get('size_divisor')
        height = max(h for h, _ in sizes)
        width = max(w for _, w in sizes)
        if size is not None:
            height, width = max(height, size[0]), max(width, size[1])
        if divisor:
            height = -(-height // divisor) * divisor
            width = -(-width // divisor) * divisor
        return height, width

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        """Args: data with ``inputs`` (list of (3, H, W) tensors) and ``data_samples``.

        Returns: dict(inputs=(N, 3, H', W') float tensor, data_samples=padded samples).
        """
        data = self.cast_data(data)
        inputs = data['inputs']
        data_samples = data.get('data_samples')
        images = []
        for image in inputs:
            if self.bgr_to_rgb and image.size(0) == 3:
                image = image[[2, 1, 0], ...]
            images.append((image.float() - self.mean) / self.std)
        height, width = self._target_size([img.shape[-2:] for img in images], training)
        batch = torch.stack(
            [_pad_bottom_right(img, height, width, self.pad_val) for img in images])
        if data_samples is not None:
            for image, sample in zip(images, data_samples):
                h, w = image.shape[-2:]
                sample.set_metainfo(dict(padding_size=(0, width - w, 0, height - h),
                                         pad_shape=(height, width), batch_input_shape=(height, width)))
                if training:
                    self._pad_targets(sample, height - h, width - w)
        return dict(inputs=batch, data_samples=data_samples)

    @staticmethod
    def _pad_targets(sample, pad_h: int, pad_w: int) -> None:
        """Pad every ground-truth map of ``sample`` in place with its task's ignore value, by its
        image's padding (``pad_h`` rows at the bottom, ``pad_w`` columns on the right), as mmseg's
        ``stack_batch`` does: a map of the image's size (any training pipeline) ends at the batch
        size; one of another size (a test pipeline keeps the ground truth at the original size,
        which mmseg's benchmark.py batches with ``training=True``) keeps its own frame."""
        spec_of = task_spec_by_gt_field
        for key in list(sample.keys()):
            spec = spec_of(key) if key.startswith('gt_') else None
            if spec is not None:
                old = getattr(sample, key)
                height, width = old.data.shape[-2] + pad_h, old.data.shape[-1] + pad_w
                padded = _pad_bottom_right(old.data, height, width, spec.ignore_value)
                setattr(sample, key, PixelData(data=padded, metainfo=old.metainfo))
