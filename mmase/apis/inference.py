"""Predict every task of an image in three lines (mmseg's ``init_model`` / ``inference_model``).

    >>> from mmase.apis import init_model, inference_model
    >>> model = init_model('configs/toy/....py', 'iter_300.pth', device='cpu')
    >>> sample = inference_model(model, 'demo.jpg')   # sample.pred_sem_seg, .pred_normals, ...

The test pipeline of the config is used without its annotation-loading transforms
(``LoadMultiTaskAnnotations``, mmseg's ``LoadAnnotations``): predicting needs no labels.
"""
import copy
import os.path as osp
import warnings
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS
from mmseg.structures import SegDataSample

from mmase.engine.checkpoint_check import check_checkpoint, fetch_checkpoint, load_checkpoint_file
from mmase.engine.experiment_tasks import apply_experiment_tasks
from mmase.engine.strict_loading import check_checkpoint_matches, model_state_dict
from mmase.tasks import get_task_spec
from mmase.utils.image_limits import check_image_file, check_pixels, max_image_pixels

ImageType = Union[str, np.ndarray]

#: Transforms that read labels; dropped from the test pipeline to predict.
ANNOTATION_TRANSFORMS = ('LoadMultiTaskAnnotations', 'LoadAnnotations', 'LoadDepthAnnotation',
                         'IgnoreEmptyHumanParts')
#: Pipeline steps that read an image file (mmase's, EXIF orientation ignored, and mmcv's).
IMAGE_LOADERS = ('LoadMultiTaskImageFromFile', 'LoadImageFromFile')


def _load_config(config) -> Config:
    if isinstance(config, (str, Path)):
        if not osp.isfile(str(config)):
            raise FileNotFoundError(f'config file {config} not found')
        return Config.fromfile(str(config))
    if isinstance(config, Config):
        return copy.deepcopy(config)
    raise TypeError(f'config must be a file name or an mmengine Config, got {type(config)}')


def _dataset_cfg(cfg: Config) -> Optional[dict]:
    for key in ('test_dataloader', 'val_dataloader'):
        loader = cfg.get(key)
        if loader and loader.get('dataset'):
            return loader['dataset']
    return None


def predict_pipeline(cfg: Config) -> List[dict]:
    """The config's test pipeline without its annotation transforms (a list of dicts).

    Taken from ``test_dataloader.dataset.pipeline`` (else ``val_dataloader``, else the
    top-level ``test_pipeline``).
    """
    dataset = _dataset_cfg(cfg)
    pipeline = (dataset or {}).get('pipeline') or cfg.get('test_pipeline')
    if not pipeline:
        raise ValueError('the config has no test pipeline (test_dataloader.dataset.pipeline or '
                         'test_pipeline) to prepare images with')
    pipeline = [copy.deepcopy(dict(t)) for t in pipeline
                if dict(t).get('type') not in ANNOTATION_TRANSFORMS]
    if not any(t.get('type') in IMAGE_LOADERS for t in pipeline):
        raise ValueError(f'the test pipeline has no image loader ({" or ".join(IMAGE_LOADERS)}) '
                         f'to read images with')
    return pipeline


def dataset_meta_of(cfg: Config, checkpoint: Optional[dict]) -> dict:
    """Class names and palettes: the checkpoint's ``meta.dataset_meta``, else the ``METAINFO``
    of the config's test dataset class, else an empty dict."""
    meta = (checkpoint or {}).get('meta', {}) if isinstance(checkpoint, dict) else {}
    if meta.get('dataset_meta'):
        return dict(meta['dataset_meta'])
    dataset = _dataset_cfg(cfg)
    dataset_cls = DATASETS.get(dataset['type']) if dataset and 'type' in dataset else None
    return copy.deepcopy(dict(getattr(dataset_cls, 'METAINFO', {}) or {}))


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None):
    """Build a multi-task model from a config and load a checkpoint, ready to predict.

    Args:
        config (str | Path | Config): Config file or object.
        checkpoint (str, optional): Checkpoint file (or URL); None keeps random weights. Its
            keys and shapes must match the model exactly (else an error names the file and the
            first mismatching keys).
        device (str): ``'cpu'``, ``'cuda:0'``, ... Default ``'cpu'`` (ours; mmseg's is cuda:0).
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        The model in eval mode on ``device`` with ``model.cfg`` (the config; its
        ``test_pipeline`` replaced by the label-free :func:`predict_pipeline`, so mmseg's
        ``mmseg.apis.inference_model`` works on this model too) and
        ``model.dataset_meta`` (class names / palettes, see :func:`dataset_meta_of`).
    """
    cfg = _load_config(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    apply_experiment_tasks(cfg)  # the top-level tasks, after cfg_options
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.pop('pretrained', None)  # mmseg convention; the weights come from `checkpoint`
    model_cfg['train_cfg'] = None
    ckpt = None
    if checkpoint is not None:
        check_checkpoint(checkpoint)
        if isinstance(model_cfg.get('backbone'), dict):
            model_cfg['backbone'].pop('init_cfg', None)
            if model_cfg['backbone'].get('pretrained') is not None:
                model_cfg['backbone']['pretrained'] = None
        ckpt = load_checkpoint_file(fetch_checkpoint(checkpoint), name=checkpoint)
    with warnings.catch_warnings():  # mmseg's training-loss advice; no loss runs here
        warnings.filterwarnings('ignore', message='Default ``avg_non_ignore`` is False')
        model = MODELS.build(model_cfg)
    if ckpt is not None:
        check_checkpoint_matches(model, ckpt, checkpoint, opt_out='a checkpoint of this config')
        model.load_state_dict(model_state_dict(ckpt), strict=True)  # the dict just checked
    model.dataset_meta = dataset_meta_of(cfg, ckpt)
    # mmseg's inference_model reads cfg.test_pipeline: give it the label-free one
    cfg.test_pipeline = predict_pipeline(cfg)
    model.cfg = cfg
    model.to(device)
    model.eval()
    return model


def _check_tasks(model, tasks: Optional[Sequence[str]]) -> tuple:
    model_tasks = tuple(model.tasks)
    if tasks is None:
        return model_tasks
    tasks = (tasks, ) if isinstance(tasks, str) else tuple(tasks)
    for task in tasks:
        if task not in model_tasks:
            raise ValueError(f'task {task!r} was requested but the model predicts only '
                             f'{model_tasks}')
    return tasks


def _check_image(img, index: int, max_pixels: Optional[int] = None) -> None:
    """Shape of an array, existence and header size of a file (before decoding), against the
    pixel limit of :mod:`mmase.utils.image_limits`."""
    if isinstance(img, np.ndarray):
        if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3)):
            raise ValueError(f'image {index}: an array must be (H, W) or (H, W, 3) BGR, got '
                             f'{img.shape}')
        check_pixels(img.shape[1], img.shape[0], f'{index} (an array)', max_pixels)
        return
    if not isinstance(img, (str, Path)):
        raise TypeError(f'image {index}: expected a path or an (H, W, 3) array, got {type(img)}')
    check_image_file(str(img), max_pixels)


def prepare_data(model, imgs: Sequence[ImageType], max_pixels: Optional[int] = None) -> dict:
    """Run the label-free test pipeline on ``imgs`` (paths or BGR arrays) and collate them.

    Each image is checked against the pixel limit (``max_pixels``, else
    ``$MMASE_MAX_IMAGE_PIXELS``, else 2**28; files from their header) before it is decoded.
    """
    max_image_pixels(max_pixels)  # a bad value fails before any image is read
    pipeline = predict_pipeline(model.cfg)
    if max_pixels is not None:  # the loader checks the header again, with the same limit
        for step in pipeline:
            if step['type'] == 'LoadMultiTaskImageFromFile':
                step['max_pixels'] = max_pixels
    pipelines = {}
    batch = []
    for index, img in enumerate(imgs):
        _check_image(img, index, max_pixels)
        is_array = isinstance(img, np.ndarray)
        if is_array not in pipelines:
            steps = copy.deepcopy(pipeline)
            if is_array:
                for step in steps:
                    if step['type'] in IMAGE_LOADERS:  # an array has no file, no EXIF
                        step['type'] = 'LoadImageFromNDArray'
                        step.pop('max_pixels', None)
                        step.pop('ignore_orientation', None)
            pipelines[is_array] = Compose(steps)
        results = dict(img=img) if is_array else dict(img_path=str(img))
        if not is_array:
            results['img_id'] = osp.splitext(osp.basename(str(img)))[0]
        try:
            batch.append(pipelines[is_array](results))
        except (AssertionError, OSError, ValueError, TypeError, AttributeError) as err:
            if is_array:
                raise
            raise ValueError(f'{img}: cannot read it as an image ({err})') from err
    return pseudo_collate(batch)


def inference_model(model, img: Union[ImageType, Sequence[ImageType]],
                    tasks: Optional[Sequence[str]] = None, max_pixels: Optional[int] = None
                    ) -> Union[SegDataSample, List[SegDataSample]]:
    """Predict every task (or ``tasks``) of one image or a batch.

    Args:
        model: From :func:`init_model` (needs ``model.cfg``).
        img: An image path, an (H, W, 3) uint8 **BGR** array (mmcv convention), or a list of
            them (predicted as one batch).
        tasks (Sequence[str], optional): Keep only these tasks' predictions (errors name a task
            the model lacks). Default: all of ``model.tasks``.
        max_pixels (int, optional): Largest image (width x height) accepted; a file is
            checked from its header before decoding, and refused naming it and both sizes
            (:class:`~mmase.utils.image_limits.ImageTooLargeError`). Default None:
            ``$MMASE_MAX_IMAGE_PIXELS``, else 2**28 (16384 x 16384).

    Returns:
        One :class:`SegDataSample` per image (a list for a list input) with ``pred_<field>``
        per task at the original image size: class ids (1, H, W) int64; foreground
        probability (1, H, W) in [0, 1]; unit normals (3, H, W); depth (1, H, W) in metres.
    """
    tasks = _check_tasks(model, tasks)
    is_batch = isinstance(img, (list, tuple))
    imgs = list(img) if is_batch else [img]
    if not imgs:
        raise ValueError('inference_model got an empty list of images')
    data = prepare_data(model, imgs, max_pixels)
    with torch.no_grad():
        results = model.test_step(data)
    for sample in results:
        for task in model.tasks:
            if task not in tasks:
                field = get_task_spec(task).pred_field
                if field in sample:
                    delattr(sample, field)
    return results if is_batch else results[0]
