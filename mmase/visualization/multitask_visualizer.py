"""The registered visualizer: one multi-task figure per image (``tools/test.py --show-dir``,
``MultiTaskInferencer``)."""
from typing import Optional, Sequence

import cv2
import numpy as np
from mmengine.dist import master_only
from mmengine.visualization import Visualizer
from mmseg.registry import VISUALIZERS

from .figure import TaskFigure, figure_to_array


@VISUALIZERS.register_module()
class MultiTaskLocalVisualizer(Visualizer):
    """Visualizer for multi-task samples.

    ``add_datasample`` draws a :class:`~mmase.visualization.figure.TaskFigure`: the input, each
    task's prediction (segmentation over the image with a class legend, saliency / edges with a
    colour bar, normals with an orientation key, depth with a colour bar in metres) and, only
    when the sample carries ground truth, a ground-truth row. Class names and palettes come
    from ``dataset_meta`` (``task_classes`` / ``task_palettes``, set from the dataset or the
    checkpoint). The figure goes to ``out_file`` when given (``.png``; ``.pdf`` / ``.svg`` are
    vector), else to every vis backend (``LocalVisBackend`` writes
    ``<save_dir>/vis_data/vis_image/<name>_<step>.png``).

    Args:
        name (str): Instance name. Default ``'visualizer'``.
        alpha (float): Opacity of segmentation colours over the image. Default 0.6.
        dpi (int): Resolution of the figure (pixels per inch). Default 100.
        normals_y (str, optional): ``'up'`` or ``'down'``: which way the normals' y axis points
            in the image, for the orientation key. Default: ``dataset_meta['normals_y']``, else
            ``'up'``.
        **kwargs: ``mmengine.visualization.Visualizer`` arguments (``vis_backends``, ``save_dir``).
    """

    def __init__(self, name: str = 'visualizer', alpha: float = 0.6, dpi: int = 100,
                 normals_y: Optional[str] = None, **kwargs):
        super().__init__(name=name, **kwargs)
        if normals_y not in (None, 'up', 'down'):
            raise ValueError(f"visualizer.normals_y must be 'up' or 'down', got {normals_y!r}")
        self.alpha = alpha
        self.dpi = dpi
        self.normals_y = normals_y

    def _tasks(self, data_sample, tasks: Optional[Sequence[str]]) -> Sequence[str]:
        tasks = tasks or (self.dataset_meta or {}).get('tasks') or data_sample.metainfo.get(
            'tasks')
        if not tasks:
            raise ValueError('MultiTaskLocalVisualizer: no task list; pass tasks=... or set '
                             "dataset_meta['tasks'] (multi-task datasets do)")
        return list(tasks)

    def draw_multitask(self, image: np.ndarray, data_sample, tasks: Optional[Sequence[str]] = None,
                       title: Optional[str] = None):
        """Args: image (H, W, 3) RGB uint8; data_sample with ``pred_*`` / ``gt_*`` maps.

        Returns: the matplotlib Figure."""
        meta = dict(self.dataset_meta or {})
        if self.normals_y is not None:
            meta['normals_y'] = self.normals_y
        figure = TaskFigure(self._tasks(data_sample, tasks), meta, self.alpha, self.dpi)
        return figure.draw(image, data_sample, title)

    def get_image(self) -> np.ndarray:
        """The last drawn canvas (H, W, 3) RGB uint8, at the figure's own resolution (mmengine's
        version re-renders it at the screen's scale)."""
        assert self._image is not None, 'nothing drawn yet'
        return self._image.copy()

    @master_only
    def add_datasample(self, name: str, image: np.ndarray, data_sample=None, draw_gt: bool = True,
                       draw_pred: bool = True, show: bool = False, wait_time: float = 0,
                       out_file: Optional[str] = None, step: int = 0,
                       tasks: Optional[Sequence[str]] = None, **kwargs) -> None:
        """Draw ``data_sample`` on ``image`` (H, W, 3 RGB) and save / show the figure."""
        if data_sample is None:
            canvas = image
        else:
            sample = data_sample.clone()
            for key in list(sample.keys()):
                if (key.startswith('gt_') and not draw_gt) or (
                        key.startswith('pred_') and not draw_pred):
                    delattr(sample, key)
            fig = self.draw_multitask(image, sample, tasks)
            canvas = figure_to_array(fig)
            if out_file is not None and out_file.lower().endswith(('.pdf', '.svg')):
                fig.savefig(out_file, dpi=self.dpi)
                out_file = None
                self.set_image(canvas)
                return
        self.set_image(canvas)
        if show:
            self.show(canvas, win_name=name, wait_time=wait_time)
        if out_file is not None:
            if not cv2.imwrite(out_file, np.ascontiguousarray(canvas[..., ::-1])):
                raise OSError(f'could not write {out_file}')
        else:
            self.add_image(name, canvas, step)
