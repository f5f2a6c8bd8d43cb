"""``MultiTaskInferencer``: mmengine's inferencer interface for multi-task models.

    >>> from mmase.apis import MultiTaskInferencer
    >>> inferencer = MultiTaskInferencer(model='configs/toy/....py', weights='iter_300.pth')
    >>> result = inferencer(['a.jpg', 'b.jpg'], out_dir='outputs')

``out_dir/vis/<name>.png`` gets one figure per image (``fig_format='pdf'|'svg'`` for vector
figures) and ``out_dir/pred/<task>/<name>.png`` each task's raw map
(:func:`mmase.visualization.encode_prediction`: class ids; probability x 255; normals RGB
``(n + 1) / 2 * 255``; depth uint16 millimetres, or ``.npy`` metres with ``depth_format='npy'``).
"""
import os.path as osp
from datetime import datetime
from typing import List, Optional, Sequence, Union

import mmcv
import mmengine
import numpy as np
from mmengine.infer import BaseInferencer
from mmseg.registry import VISUALIZERS

from mmase.tasks import get_task_spec
from mmase.utils.image_limits import max_image_pixels
from mmase.visualization import save_predictions
from .inference import _check_tasks, init_model, prepare_data

InputType = Union[str, np.ndarray]


class MultiTaskInferencer(BaseInferencer):
    """Predict, draw and save every task of images.

    Args:
        model (str | Config): Config file or object.
        weights (str, optional): Checkpoint (keys must match the config's model).
        device (str, optional): Default: cuda if available, else cpu.
        scope (str): Registry scope. Default ``'mmseg'``.
        tasks (Sequence[str], optional): Tasks to keep (default: all of the model's).
        show_progress (bool): Show a progress bar. Default False (ours).
        max_pixels (int, optional): Largest input image (width x height), checked from the
            file header before decoding (:mod:`mmase.utils.image_limits`). Default None:
            ``$MMASE_MAX_IMAGE_PIXELS``, else 2**28.

    Call arguments (``inferencer(inputs, ...)``): ``inputs`` (path, directory, BGR array or a
    list of them), ``batch_size`` (1), ``out_dir`` (''), ``return_datasamples`` (False),
    ``return_vis`` (False), ``show`` (False), ``fig_format`` ('png'), ``depth_format``
    ('png' | 'npy'). Returns ``dict(predictions=[{task: array}], visualization=[RGB arrays])``
    or the data samples.
    """

    preprocess_kwargs: set = set()
    forward_kwargs: set = set()
    visualize_kwargs: set = {'show', 'wait_time', 'img_out_dir', 'return_vis', 'fig_format'}
    postprocess_kwargs: set = {'pred_out_dir', 'depth_format'}

    def __init__(self, model, weights: Optional[str] = None, device: Optional[str] = None,
                 scope: str = 'mmseg', tasks: Optional[Sequence[str]] = None,
                 show_progress: bool = False, max_pixels: Optional[int] = None):
        self._requested_tasks = tasks
        self.max_pixels = max_image_pixels(max_pixels)
        self._names: List[str] = []
        self._counter = 0
        super().__init__(model=model, weights=weights, device=device, scope=scope,
                         show_progress=show_progress)
        self.tasks = _check_tasks(self.model, tasks)

    def _init_model(self, cfg, weights, device='cpu'):
        return init_model(cfg, weights, device=device)

    def _init_pipeline(self, cfg):
        return None  # preprocess runs mmase.apis.prepare_data (label-free test pipeline)

    def _init_collate(self, cfg):
        from mmengine.dataset import pseudo_collate
        return pseudo_collate  # unused: preprocess collates with prepare_data

    def _init_visualizer(self, cfg):
        if 'visualizer' not in cfg:
            return None
        vis_cfg = dict(cfg.visualizer)
        vis_cfg['name'] = f'mt_inferencer_{datetime.now():%Y%m%d_%H%M%S_%f}'
        vis_cfg.pop('vis_backends', None)
        vis_cfg.pop('save_dir', None)
        visualizer = VISUALIZERS.build(vis_cfg)
        visualizer.dataset_meta = self.model.dataset_meta
        return visualizer

    def _name(self, item) -> str:
        if isinstance(item, str):
            return osp.splitext(osp.basename(item))[0]
        name = f'{self._counter:08d}'
        self._counter += 1
        return name

    def preprocess(self, inputs: list, batch_size: int = 1, **kwargs):
        self._names = [self._name(item) for item in inputs]
        for start in range(0, len(inputs), batch_size):
            yield prepare_data(self.model, inputs[start:start + batch_size], self.max_pixels)

    def __call__(self, inputs, return_datasamples: bool = False, batch_size: int = 1,
                 out_dir: str = '', **kwargs) -> dict:
        img_out_dir = osp.join(out_dir, 'vis') if out_dir else ''
        pred_out_dir = osp.join(out_dir, 'pred') if out_dir else ''
        return super().__call__(inputs, return_datasamples=return_datasamples,
                                batch_size=batch_size, img_out_dir=img_out_dir,
                                pred_out_dir=pred_out_dir, **kwargs)

    def visualize(self, inputs: list, preds: list, return_vis: bool = False, show: bool = False,
                  wait_time: float = 0, img_out_dir: str = '',
                  fig_format: str = 'png') -> Optional[List[np.ndarray]]:
        if not (show or img_out_dir or return_vis):
            return None
        if self.visualizer is None:
            raise ValueError('drawing needs a `visualizer` in the config')
        if fig_format not in ('png', 'pdf', 'svg'):
            raise ValueError(f'fig_format must be png, pdf or svg, got {fig_format!r}')
        if img_out_dir:
            mmengine.mkdir_or_exist(img_out_dir)
        results = []
        for item, pred, name in zip(inputs, preds, self._names):
            if isinstance(item, str):
                image = mmcv.imread(item, channel_order='rgb')
            else:
                image = item[..., ::-1] if item.ndim == 3 else np.repeat(item[..., None], 3, 2)
            out_file = osp.join(img_out_dir, f'{name}.{fig_format}') if img_out_dir else None
            self.visualizer.add_datasample(name, np.ascontiguousarray(image), pred, draw_gt=False,
                                           show=show, wait_time=wait_time, out_file=out_file,
                                           tasks=self.tasks)
            results.append(self.visualizer.get_image())
        return results if return_vis else None

    def postprocess(self, preds: list, visualization: Optional[list],
                    return_datasample: bool = False, pred_out_dir: str = '',
                    depth_format: str = 'png') -> Union[dict, list]:
        for pred in preds:
            for task in self.model.tasks:
                field = get_task_spec(task).pred_field
                if task not in self.tasks and field in pred:
                    delattr(pred, field)
        if pred_out_dir:
            for pred, name in zip(preds, self._names):
                save_predictions(pred, list(self.tasks), pred_out_dir, name, depth_format)
        if return_datasample:
            return preds
        predictions = [{task: getattr(p, get_task_spec(task).pred_field).data.cpu().numpy()
                        for task in self.tasks} for p in preds]
        return dict(predictions=predictions, visualization=visualization or [])
