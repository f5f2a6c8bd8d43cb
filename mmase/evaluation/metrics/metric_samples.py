"""Reading one sample for the multi-task metric: its name and id, a field as a numpy array in
the meter's shape, and the per-task records of one sample (inline or in a worker process)."""
import os.path as osp
from collections.abc import Mapping
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from mmengine.structures import BaseDataElement

from mmase.tasks import get_task_spec
from .task_metrics import TaskMeter

#: One sample's meter inputs: task -> (prediction, ground truth) in the meter's shapes, or None
#: when the task does not count for the sample (e.g. not in ``edge_eval_ids``).
SampleInputs = Dict[str, Optional[Tuple[np.ndarray, np.ndarray]]]


def task_error(task: str, name: str, error: ValueError) -> ValueError:
    """``error`` re-worded to name the task, its fields and the sample ``name``."""
    spec = get_task_spec(task)
    return ValueError(f'MultiTaskMetric: task {task!r} ({spec.pred_field} vs {spec.gt_field}) '
                      f'of sample {name}: {error}')


def sample_records(meters: Dict[str, TaskMeter], inputs: SampleInputs,
                   name: str) -> Dict[str, Any]:
    """Per-task records of one sample (run inline or in a worker process).

    Raises:
        ValueError: A meter rejected its input; the message names the task and the sample.
    """
    record = {}
    for task, pair in inputs.items():
        if pair is None:
            record[task] = None
            continue
        try:
            record[task] = meters[task].process(*pair)
        except ValueError as error:
            raise task_error(task, name, error) from error
    return record


def sample_meta(sample: Any, key: str) -> Any:
    """``key`` of a sample's metainfo (a ``SegDataSample``) or of a dict sample."""
    if isinstance(sample, BaseDataElement):
        return sample.metainfo.get(key)
    return sample.get(key)

def sample_name(sample: Any) -> str:
    """The sample's image path (or id) for messages."""
    name = sample_meta(sample, 'img_path') or sample_meta(sample, 'img_id')
    return repr(name) if name is not None else '<no img_path>'

def sample_id(sample: Any) -> str:
    """The sample's image id (``img_id``, else the image file's stem)."""
    img_id = sample_meta(sample, 'img_id')
    if img_id is not None:
        return str(img_id)
    img_path = sample_meta(sample, 'img_path')
    if img_path is None:
        raise ValueError('MultiTaskMetric.edge_eval_ids needs img_id or img_path in the '
                         'samples\' metainfo')
    return osp.splitext(osp.basename(img_path))[0]

def sample_array(sample: Any, field: str, task: str) -> np.ndarray:
    """Read ``field`` of ``sample`` as a numpy array."""
    if isinstance(sample, BaseDataElement):
        value = sample.get(field)
    elif isinstance(sample, Mapping):
        value = sample.get(field)
    else:
        raise TypeError(f'MultiTaskMetric: a data sample must be a dict or a SegDataSample, '
                        f'got {type(sample).__name__}')
    if value is None:
        where = 'the model must write it' if field.startswith('pred_') else \
            'the pipeline must load it'
        raise KeyError(f'MultiTaskMetric: sample {sample_name(sample)} has no {field!r} '
                       f'for task {task!r} ({where})')
    if isinstance(value, BaseDataElement):
        value = value.get('data')
    elif isinstance(value, Mapping):
        value = value.get('data')
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        # numpy has no bfloat16: half-precision outputs (AMP) are read as float32
        return (value.float() if value.is_floating_point() else value).numpy()
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(f'MultiTaskMetric: {field!r} of sample {sample_name(sample)} must '
                    f'hold a tensor (PixelData.data), got {type(value).__name__}')

def to_meter_shape(array: np.ndarray, channels: int, field: str) -> np.ndarray:
    """``(C, H, W)`` / ``(1, H, W)`` / ``(H, W)`` -> the meter's shape (``(H, W)`` for one
    channel), checked."""
    if channels == 1:
        if array.ndim == 3 and array.shape[0] == 1:
            array = array[0]
        if array.ndim != 2:
            raise ValueError(f'{field} must have shape (1, H, W) or (H, W), got {array.shape}')
    elif array.ndim != 3 or array.shape[0] != channels:
        raise ValueError(f'{field} must have shape ({channels}, H, W), got {array.shape}')
    return array
