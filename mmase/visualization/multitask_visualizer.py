"""Draw a multi-task prediction beside its ground truth, one PNG per image."""
from typing import Dict, Optional

import cv2
import numpy as np
from mmengine.dist import master_only
from mmengine.visualization import Visualizer
from mmseg.registry import VISUALIZERS

from mmase.tasks import TASK_SPECS, TaskSpec


def _random_palette(num_classes: int) -> np.ndarray:
    rng = np.random.RandomState(42)
    return rng.randint(0, 255, size=(num_classes, 3)).astype(np.uint8)


def render_task_map(spec: TaskSpec, data: np.ndarray, palette: Optional[np.ndarray] = None) -> np.ndarray:
    """Turn one task map into an RGB uint8 image ``(H, W, 3)``.

    Args:
        spec: The task's spec (its ``kind`` picks the rendering).
        data: ``(C, H, W)`` map as stored on a data sample (class ids, probabilities / {0,1}
            labels, unit normals, or metres).
        palette: ``(K, 3)`` RGB colours of segmentation classes.

    Class maps use the palette (ignore = black); binary maps are grey (ignore = dark red);
    normals map ``n`` to ``(n + 1) / 2`` RGB (invalid = black); depth is scaled to its 0-max range.
    """
    if spec.kind == 'segmentation':
        labels = data[0].astype(np.int64)
        palette = palette if palette is not None else _random_palette(int(labels.max()) + 1)
        out = np.zeros(labels.shape + (3, ), np.uint8)
        valid = (labels >= 0) & (labels < len(palette))
        out[valid] = np.asarray(palette, np.uint8)[labels[valid]]
        return out
    if spec.kind == 'binary':
        values = data[0].astype(np.float32)
        ignore = values == spec.ignore_value
        grey = (np.clip(np.where(ignore, 0, values), 0, 1) * 255).astype(np.uint8)
        out = np.repeat(grey[..., None], 3, axis=2)
        out[ignore] = (128, 0, 0)
        return out
    if spec.kind == 'normals':
        normals = data.astype(np.float32).transpose(1, 2, 0)
        out = ((np.clip(normals, -1, 1) + 1) * 127.5).astype(np.uint8)
        out[(normals == 0).all(axis=2)] = 0
        return out
    depth = data[0].astype(np.float32)
    top = float(np.nanmax(depth)) if np.isfinite(depth).any() else 1.0
    grey = (np.clip(np.nan_to_num(depth) / max(top, 1e-6), 0, 1) * 255).astype(np.uint8)
    return cv2.applyColorMap(grey, cv2.COLORMAP_VIRIDIS)[..., ::-1].copy()


def _label(image: np.ndarray, text: str) -> np.ndarray:
    """Add a 14 px caption bar above ``image``."""
    bar = np.full((14, image.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, image], axis=0)


@VISUALIZERS.register_module()
class MultiTaskLocalVisualizer(Visualizer):
    """Visualizer for multi-task samples, used by ``tools/test.py --show-dir``.

    ``add_datasample`` builds one canvas: the input image, then for each task present on the
    sample a row ``[prediction | ground truth]`` (palettes from ``dataset_meta['task_palettes']``).
    The canvas goes to ``out_file`` when given, else to every vis backend (``LocalVisBackend``
    writes ``<save_dir>/vis_data/vis_image/<name>_<step>.png``).

    Args:
        name (str): Instance name. Default ``'visualizer'``.
        **kwargs: ``mmengine.visualization.Visualizer`` arguments (``vis_backends``, ``save_dir``).
    """

    def __init__(self, name: str = 'visualizer', **kwargs):
        super().__init__(name=name, **kwargs)

    def _palette(self, task: str) -> Optional[np.ndarray]:
        palettes: Dict = (self.dataset_meta or {}).get('task_palettes', {})
        palette = palettes.get(task)
        return np.asarray(palette, np.uint8) if palette is not None else None

    def draw_multitask(self, image: np.ndarray, data_sample) -> np.ndarray:
        """Args: image (H, W, 3) RGB uint8; data_sample with ``pred_*`` / ``gt_*`` maps.

        Returns: the canvas (H', W', 3) RGB uint8.
        """
        height, width = image.shape[:2]
        rows = [np.concatenate([_label(image, 'input'), _label(np.zeros_like(image), '')], 1)]
        for task, spec in TASK_SPECS.items():
            cells = []
            for field, caption in ((spec.pred_field, 'pred'), (spec.gt_field, 'gt')):
                if field in data_sample:
                    data = getattr(data_sample, field).data.detach().cpu().float().numpy()
                    cell = render_task_map(spec, data, self._palette(task))
                    cell = cv2.resize(cell, (width, height), interpolation=cv2.INTER_NEAREST)
                else:
                    cell = np.zeros_like(image)
                cells.append(_label(cell, f'{task} {caption}'))
            if spec.pred_field in data_sample or spec.gt_field in data_sample:
                rows.append(np.concatenate(cells, axis=1))
        return np.concatenate(rows, axis=0)

    @master_only
    def add_datasample(self, name: str, image: np.ndarray, data_sample=None, draw_gt: bool = True,
                       draw_pred: bool = True, show: bool = False, wait_time: float = 0,
                       out_file: Optional[str] = None, step: int = 0, **kwargs) -> None:
        """Draw ``data_sample`` on ``image`` (H, W, 3 RGB) and save / show the canvas."""
        canvas = image if data_sample is None else self.draw_multitask(image, data_sample)
        self.set_image(canvas)
        if show:
            self.show(canvas, win_name=name, wait_time=wait_time)
        if out_file is not None:
            cv2.imwrite(out_file, canvas[..., ::-1])
        else:
            self.add_image(name, canvas, step)
