"""Geometric transforms that move the image and every task map of a sample together.

Each transform changes ``results['img']`` and every key listed in ``results['task_fields']``
(filled by ``LoadMultiTaskAnnotations``) the same way, so all maps stay pixel-aligned with the
image. How a map is treated depends on its task's kind (:mod:`mmase.tasks`):

- resizing: the image uses ``interpolation`` (bilinear by default); every label map, normals
  included, uses nearest neighbour, so class ids stay ids and normals stay unit vectors (or
  exactly zero where invalid). The nearest neighbour is pixel-centre aligned
  (``cv2.INTER_NEAREST_EXACT``), as the bilinear image resize is; cv2's plain
  ``INTER_NEAREST`` (mmcv's 'nearest') would shift labels by up to half a source pixel;
- flipping: a horizontal flip negates the x component of a vector map (the declaration's
  ``flip_sign``; normals: channel 0), a vertical flip the y component (normals: channel 1);
  every other map (depth included) is only mirrored;
- padding: the image gets ``pad_val``; each map gets its task's ``ignore_value`` (255 for
  segmentation/binary maps, 0 for normals and depth).

Meta keys follow mmcv/mmseg: ``img_shape`` (H, W) of the image content, ``scale_factor``
(w_scale, h_scale), ``keep_ratio``, ``scale``, ``flip``, ``flip_direction`` and ``pad_shape``
(H, W) of the padded canvas (equal to ``img_shape`` after a resize or crop).
"""
from typing import Iterator, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmseg.registry import TRANSFORMS

from mmase.tasks import TASK_SPECS, TaskSpec, task_spec_by_gt_field


def task_maps(results: dict) -> Iterator[Tuple[str, TaskSpec]]:
    """Yield ``(key, spec)`` for every task map listed in ``results['task_fields']`` (any
    declared task's ground-truth field)."""
    for key in results.get('task_fields', []):
        spec = task_spec_by_gt_field(key)
        if spec is None:
            raise KeyError(f'task_fields lists {key!r}, which is no task ground-truth field; '
                           f'known: {sorted(s.gt_field for s in TASK_SPECS.values())}')
        if key not in results:
            raise KeyError(f'task_fields lists {key!r} but the sample has no such map')
        yield key, spec


def _resize_sample(results: dict, size_wh: Tuple[int, int], interpolation: str) -> None:
    """Resize image and task maps to exactly ``size_wh`` = (w, h); update meta keys."""
    img = results['img']
    h, w = img.shape[:2]
    new_w, new_h = int(size_wh[0]), int(size_wh[1])
    results['img'] = mmcv.imresize(img, (new_w, new_h), interpolation=interpolation)
    for key, _ in task_maps(results):
        results[key] = cv2.resize(results[key], (new_w, new_h),
                                  interpolation=cv2.INTER_NEAREST_EXACT)
    results['img_shape'] = (new_h, new_w)
    results['pad_shape'] = (new_h, new_w)
    results['scale_factor'] = (new_w / w, new_h / h)


@TRANSFORMS.register_module()
class MultiTaskResize(BaseTransform):
    """Resize the image and all task maps loaded so far.

    In a test pipeline put it before ``LoadMultiTaskAnnotations``: only the image is resized
    and the ground truth stays at the original size (mmseg's convention).

    Args:
        scale (int | tuple[int, int], optional): Target (w, h) (mmcv order). With
            ``keep_ratio`` the image is rescaled to fit in it: long edge <= max(scale), short
            edge <= min(scale). Defaults to None.
        scale_factor (float, optional): Used when ``scale`` is None: new size =
            round(old size * scale_factor). Defaults to None.
        keep_ratio (bool): Keep the aspect ratio. Defaults to True.
        interpolation (str): Image interpolation (mmcv name). Label maps always use
            centre-aligned nearest neighbour. Defaults to 'bilinear'.

    Modified keys: ``img``, task maps, ``img_shape``, ``pad_shape``. Added keys: ``scale``,
    ``scale_factor``, ``keep_ratio``.
    """

    def __init__(self,
                 scale: Optional[Union[int, Tuple[int, int]]] = None,
                 scale_factor: Optional[float] = None,
                 keep_ratio: bool = True,
                 interpolation: str = 'bilinear') -> None:
        if scale is None and scale_factor is None:
            raise ValueError('MultiTaskResize: give scale or scale_factor')
        self.scale = (scale, scale) if isinstance(scale, int) else scale
        if self.scale is not None and (len(self.scale) != 2 or min(self.scale) <= 0):
            raise ValueError(f'MultiTaskResize.scale must be positive (w, h), got {scale}')
        if scale_factor is not None and scale_factor <= 0:
            raise ValueError(f'MultiTaskResize.scale_factor must be > 0, got {scale_factor}')
        self.scale_factor = scale_factor
        self.keep_ratio = keep_ratio
        self.interpolation = interpolation

    def target_size(self, img_shape: Sequence[int]) -> Tuple[int, int]:
        """Output (w, h) for an image of (h, w) ``img_shape``."""
        h, w = img_shape[:2]
        if self.scale is None:
            return (max(1, int(w * self.scale_factor + 0.5)),
                    max(1, int(h * self.scale_factor + 0.5)))
        if self.keep_ratio:
            return mmcv.rescale_size((w, h), tuple(self.scale))
        return tuple(self.scale)

    def transform(self, results: dict) -> dict:
        """Resize ``img`` and the task maps; see the class docstring."""
        size = self.target_size(results['img'].shape)
        _resize_sample(results, size, self.interpolation)
        results['scale'] = size
        results['keep_ratio'] = self.keep_ratio
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scale={self.scale}, '
                f'scale_factor={self.scale_factor}, keep_ratio={self.keep_ratio}, '
                f'interpolation={self.interpolation!r})')


@TRANSFORMS.register_module()
class MultiTaskRandomResize(BaseTransform):
    """Resize the image and task maps to a random multiple of ``scale``.

    A ratio ``r`` is drawn uniformly from ``ratio_range``; the target is
    ``(int(w * r), int(h * r))`` for ``scale = (w, h)``, used as in :class:`MultiTaskResize`
    (with ``keep_ratio`` the image fits in it). With ``scale=(512, 512)`` and
    ``keep_ratio=True`` the long edge becomes ``512 r``.

    Args:
        scale (int | tuple[int, int]): Base (w, h).
        ratio_range (tuple[float, float]): (min_ratio, max_ratio).
        keep_ratio (bool): Keep the aspect ratio. Defaults to True.
        interpolation (str): Image interpolation. Defaults to 'bilinear'.
    """

    def __init__(self,
                 scale: Union[int, Tuple[int, int]],
                 ratio_range: Tuple[float, float],
                 keep_ratio: bool = True,
                 interpolation: str = 'bilinear') -> None:
        self.scale = (scale, scale) if isinstance(scale, int) else tuple(scale)
        if len(self.scale) != 2 or min(self.scale) <= 0:
            raise ValueError(f'MultiTaskRandomResize.scale must be positive (w, h), got {scale}')
        if len(ratio_range) != 2 or not 0 < ratio_range[0] <= ratio_range[1]:
            raise ValueError('MultiTaskRandomResize.ratio_range must be (min, max) with '
                             f'0 < min <= max, got {ratio_range}')
        self.ratio_range = tuple(ratio_range)
        self.keep_ratio = keep_ratio
        self.interpolation = interpolation

    @cache_randomness
    def _random_scale(self) -> Tuple[int, int]:
        low, high = self.ratio_range
        ratio = np.random.random_sample() * (high - low) + low
        return max(1, int(self.scale[0] * ratio)), max(1, int(self.scale[1] * ratio))

    def transform(self, results: dict) -> dict:
        """Resize ``img`` and the task maps to a random scale."""
        resize = MultiTaskResize(scale=self._random_scale(), keep_ratio=self.keep_ratio,
                                 interpolation=self.interpolation)
        return resize(results)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scale={self.scale}, '
                f'ratio_range={self.ratio_range}, keep_ratio={self.keep_ratio}, '
                f'interpolation={self.interpolation!r})')


@TRANSFORMS.register_module()
class MultiTaskRandomCrop(BaseTransform):
    """Crop a random window of ``crop_size`` from the image and every task map.

    An image smaller than the crop in a dimension keeps its full extent there (pad it
    afterwards with :class:`MultiTaskPad`).

    Args:
        crop_size (int | tuple[int, int]): (h, w) of the crop (mmseg order).
        cat_max_ratio (float): If < 1, up to 10 windows are drawn until no single semseg
            class (ignore excluded) covers more than this fraction of the window, as mmseg's
            ``RandomCrop`` does. It looks at ``gt_sem_seg``; samples without a semseg map are
            cropped at the first window drawn. Defaults to 1.0 (off).
        ignore_index (int): Semseg value not counted by ``cat_max_ratio``. Defaults to 255.
    """

    def __init__(self,
                 crop_size: Union[int, Tuple[int, int]],
                 cat_max_ratio: float = 1.0,
                 ignore_index: int = 255) -> None:
        self.crop_size = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(
            crop_size)
        if len(self.crop_size) != 2 or min(self.crop_size) <= 0:
            raise ValueError(f'MultiTaskRandomCrop.crop_size must be positive (h, w), got '
                             f'{crop_size}')
        if not 0 < cat_max_ratio <= 1:
            raise ValueError(f'MultiTaskRandomCrop.cat_max_ratio must be in (0, 1], got '
                             f'{cat_max_ratio}')
        self.cat_max_ratio = cat_max_ratio
        self.ignore_index = ignore_index

    def _draw_window(self, img_shape: Sequence[int]) -> Tuple[int, int, int, int]:
        margin_h = max(img_shape[0] - self.crop_size[0], 0)
        margin_w = max(img_shape[1] - self.crop_size[1], 0)
        y1 = np.random.randint(0, margin_h + 1)
        x1 = np.random.randint(0, margin_w + 1)
        return y1, y1 + self.crop_size[0], x1, x1 + self.crop_size[1]

    @cache_randomness
    def crop_window(self, results: dict) -> Tuple[int, int, int, int]:
        """Random (y1, y2, x1, x2) window, honouring ``cat_max_ratio``."""
        window = self._draw_window(results['img'].shape)
        seg = results.get('gt_sem_seg')
        if self.cat_max_ratio < 1.0 and seg is not None:
            for _ in range(10):
                y1, y2, x1, x2 = window
                labels, counts = np.unique(seg[y1:y2, x1:x2], return_counts=True)
                counts = counts[labels != self.ignore_index]
                if len(counts) > 1 and counts.max() / counts.sum() < self.cat_max_ratio:
                    break
                window = self._draw_window(results['img'].shape)
        return window

    def transform(self, results: dict) -> dict:
        """Crop ``img`` and the task maps to one random window."""
        y1, y2, x1, x2 = self.crop_window(results)
        results['img'] = results['img'][y1:y2, x1:x2, ...]
        for key, _ in task_maps(results):
            results[key] = results[key][y1:y2, x1:x2, ...]
        results['img_shape'] = results['img'].shape[:2]
        results['pad_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'cat_max_ratio={self.cat_max_ratio}, ignore_index={self.ignore_index})')


@TRANSFORMS.register_module()
class MultiTaskRandomFlip(BaseTransform):
    """Flip the image and every task map with probability ``prob``.

    Normals are mirrored too: a horizontal flip negates their x component, a vertical flip
    their y component.

    Args:
        prob (float): Flip probability. Defaults to 0.5.
        direction (str): 'horizontal' or 'vertical'. Defaults to 'horizontal'.

    Added keys: ``flip`` (bool), ``flip_direction`` (str or None).
    """

    def __init__(self, prob: float = 0.5, direction: str = 'horizontal') -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'MultiTaskRandomFlip.prob must be in [0, 1], got {prob}')
        if direction not in ('horizontal', 'vertical'):
            raise ValueError("MultiTaskRandomFlip.direction must be 'horizontal' or "
                             f"'vertical', got {direction!r}")
        self.prob = prob
        self.direction = direction

    @cache_randomness
    def _do_flip(self) -> bool:
        return bool(np.random.rand() < self.prob)

    def transform(self, results: dict) -> dict:
        """Flip (or not) ``img`` and the task maps; set ``flip``/``flip_direction``."""
        if not self._do_flip():
            results['flip'] = False
            results['flip_direction'] = None
            return results
        results['img'] = mmcv.imflip(results['img'], direction=self.direction)
        for key, spec in task_maps(results):
            flipped = mmcv.imflip(results[key], direction=self.direction)
            if spec.flip_sign is not None:  # vector maps (normals): x / y change sign
                flipped = flipped.copy()
                flipped[..., spec.flip_sign[0 if self.direction == 'horizontal' else 1]] *= -1
            results[key] = flipped
        results['flip'] = True
        results['flip_direction'] = self.direction
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob}, direction={self.direction!r})'


@TRANSFORMS.register_module()
class MultiTaskPad(BaseTransform):
    """Pad the image and every task map at the bottom and right.

    Args:
        size (int | tuple[int, int], optional): Padded (h, w), the order of ``crop_size`` and
            of mmseg's data pre-processor ``size``; the sample must not be larger. Defaults
            to None.
        size_divisor (int, optional): Pad (h, w) up to multiples of it instead of ``size``.
            Defaults to None.
        pad_val (float): Image padding value. Task maps are padded with their task's
            ``ignore_value``. Defaults to 0.

    Modified keys: ``img``, task maps. Added keys: ``pad_shape`` (padded (H, W)),
    ``pad_fixed_size``, ``pad_size_divisor``. ``img_shape`` keeps the size of the image
    content, as mmseg's data pre-processor does when it pads.
    """

    def __init__(self,
                 size: Optional[Union[int, Tuple[int, int]]] = None,
                 size_divisor: Optional[int] = None,
                 pad_val: float = 0) -> None:
        if (size is None) == (size_divisor is None):
            raise ValueError('MultiTaskPad: give exactly one of size and size_divisor')
        self.size = (size, size) if isinstance(size, int) else (
            tuple(size) if size is not None else None)
        if self.size is not None and (len(self.size) != 2 or min(self.size) <= 0):
            raise ValueError(f'MultiTaskPad.size must be positive (h, w), got {size}')
        if size_divisor is not None and size_divisor <= 0:
            raise ValueError(f'MultiTaskPad.size_divisor must be > 0, got {size_divisor}')
        self.size_divisor = size_divisor
        self.pad_val = pad_val

    def _padded_hw(self, h: int, w: int) -> Tuple[int, int]:
        if self.size is not None:
            pad_h, pad_w = self.size
            if h > pad_h or w > pad_w:
                raise ValueError(f'MultiTaskPad: sample of (h, w) = {(h, w)} is larger than '
                                 f'size (h, w) = {self.size}; crop or resize it first')
            return pad_h, pad_w
        d = self.size_divisor
        return -(-h // d) * d, -(-w // d) * d

    @staticmethod
    def _pad(arr: np.ndarray, pad_h: int, pad_w: int, value: float) -> np.ndarray:
        h, w = arr.shape[:2]
        widths = [(0, pad_h - h), (0, pad_w - w)] + [(0, 0)] * (arr.ndim - 2)
        return np.pad(arr, widths, mode='constant', constant_values=value)

    def transform(self, results: dict) -> dict:
        """Pad ``img`` and the task maps; set ``pad_shape``."""
        h, w = results['img'].shape[:2]
        pad_h, pad_w = self._padded_hw(h, w)
        results['img'] = self._pad(results['img'], pad_h, pad_w, self.pad_val)
        for key, spec in task_maps(results):
            if results[key].shape[:2] != (h, w):
                raise ValueError(f'MultiTaskPad: {key} is {results[key].shape[:2]} but the '
                                 f'image is {(h, w)}')
            results[key] = self._pad(results[key], pad_h, pad_w, spec.ignore_value)
        results['pad_shape'] = (pad_h, pad_w)
        results['pad_fixed_size'] = self.size
        results['pad_size_divisor'] = self.size_divisor
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'size_divisor={self.size_divisor}, pad_val={self.pad_val})')
