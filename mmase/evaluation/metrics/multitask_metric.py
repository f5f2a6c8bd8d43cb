"""``MultiTaskMetric``: every task's metrics and Δm from one pass over the predictions."""
import multiprocessing
import os.path as osp
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from numbers import Real
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement
from mmseg.registry import METRICS
from prettytable import PrettyTable

from mmase.tasks import TASK_SPECS, check_tasks, get_task_spec
from ..delta_m import MAIN_METRICS, main_metric_key, per_task_delta_m
from .task_metrics import TaskMeter, build_task_meter, check_protocol


#: One sample's meter inputs: task -> (prediction, ground truth) in the meter's shapes, or None
#: when the task does not count for the sample (e.g. not in ``edge_eval_ids``).
SampleInputs = Dict[str, Optional[Tuple[np.ndarray, np.ndarray]]]


def task_error(task: str, name: str, error: ValueError) -> ValueError:
    """``error`` re-worded to name the task, its fields and the sample ``name``."""
    spec = TASK_SPECS[task]
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


@METRICS.register_module()
class MultiTaskMetric(BaseMetric):
    """Evaluate every task of a multi-task model and, given single-task references, Δm.

    Each sample must carry ``gt_<field>`` and ``pred_<field>`` for every task (fields from
    ``mmase.tasks.TASK_SPECS``; values ``PixelData``, ``{'data': tensor}`` as mmengine's evaluator
    passes them, tensors or arrays), the prediction at the ground truth's size. :meth:`process`
    keeps only small per-sample counts, so the memory does not grow with the image size and mmengine
    can gather the results from several processes.

    Returned keys (IoU and F in percent, angles in degrees, depth in metres):

    - ``semseg/mIoU``, ``human_parts/mIoU`` (images without any part are left out);
    - ``sal/maxF`` (per ``protocol``), ``sal/mIoU``; with ``'invpt'`` also ``sal/maxF_atrc`` (the
      maxF without the second sigmoid of the InvPT meter), with ``'astmt'`` also ``sal/mIoU_astmt``;
    - ``normals/mErr``; with ``'astmt'`` also ``normals/median``, ``normals/rmse``,
      ``normals/within11.25``, ``normals/within22.5``, ``normals/within30``;
    - ``edge/odsF`` (Python approximation of SEISM, see ``EdgeMeter``), ``edge/loss`` (balanced
      BCE);
    - ``depth/rmse``, ``depth/abs_rel``, ``depth/delta1``;
    - with ``stl_reference``: ``multitask/delta_m`` and ``multitask/delta_<task>`` (percent).

    Args:
        tasks (Sequence[str]): Tasks to evaluate.
        protocol (str): ``'invpt'`` (default) | ``'astmt'`` | ``'atrc'``; see
            ``mmase.evaluation.metrics.task_metrics``.
        stl_reference (dict, optional): Task -> single-task value of its main metric (``semseg``
            mIoU, ``human_parts`` mIoU, ``sal`` maxF, ``normals`` mErr, ``edge`` odsF, ``depth``
            rmse), in the units above and measured with the same protocol. Must hold every task of
            ``tasks`` (more are allowed). When given, Δm is reported. Default: None.
        num_classes (dict, optional): Task -> number of classes for the segmentation tasks. Tasks
            not given here take ``len(dataset_meta['task_classes'][task])``. Default: None.
        edge_tolerance (float): Edge matching distance, fraction of the image diagonal (0.0075
            PASCAL, 0.011 NYUD). Default: 0.0075.
        edge_pos_weight (float): Positive weight of the balanced BCE edge loss. Default: 0.95.
        edge_eval_ids (str, optional): Path of a text file of image ids, one a line: only those
            images count for ``edge`` (e.g. SEISM's ``test_new`` list, 2498 of PASCAL-Context's 5105
            val images). A sample's id is its metainfo ``img_id``, else the stem of ``img_path``.
            Default: None (all).
        num_workers (int): Worker processes that compute the per-sample counts while the model
            runs (edge odsF costs 1-4 s per PASCAL image, the rest milliseconds); started at the
            first batch of an evaluation and stopped at its end, with the process-wide start
            method (``env_cfg.mp_cfg.mp_start_method``, 'fork' in the shipped configs; with
            'spawn' the launching script needs the ``if __name__ == '__main__'`` guard, as
            ``tools/test.py`` has). 0 computes them in the calling process. The results do not
            depend on it. Default: 0.
        collect_device (str): Device for gathering results across processes. Default: 'cpu'.
        prefix (str, optional): Prefix of the metric names. Default: None.
        collect_dir (str, optional): Directory for collecting results on CPU. Default: None.
    """

    def __init__(self,
                 tasks: Sequence[str],
                 protocol: str = 'invpt',
                 stl_reference: Optional[Dict[str, float]] = None,
                 num_classes: Optional[Dict[str, int]] = None,
                 edge_tolerance: float = 0.0075,
                 edge_pos_weight: float = 0.95,
                 edge_eval_ids: Optional[str] = None,
                 num_workers: int = 0,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.tasks = check_tasks(tasks, 'MultiTaskMetric.tasks')
        self.protocol = check_protocol(protocol, 'MultiTaskMetric.protocol')
        self.stl_reference = self._check_stl_reference(stl_reference)
        self.num_classes = self._check_num_classes(num_classes)
        self.edge_tolerance = edge_tolerance
        self.edge_pos_weight = edge_pos_weight
        self.edge_eval_ids = self._read_ids(edge_eval_ids)
        self._meters: Dict[str, TaskMeter] = {}
        if 'edge' in self.tasks:
            self._meter('edge')  # validates edge_tolerance / edge_pos_weight now
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f'MultiTaskMetric.num_workers must be an int >= 0, got '
                             f'{num_workers!r}')
        self.num_workers = num_workers
        self._pool: Optional[ProcessPoolExecutor] = None
        self._pending: Deque[Future] = deque()

    # ----------------------------------------------------------------------------- configuration
    def _check_stl_reference(
            self, reference: Optional[Dict[str, float]]) -> Optional[Dict[str, float]]:
        if reference is None:
            return None
        if not isinstance(reference, Mapping):
            raise TypeError(f'MultiTaskMetric.stl_reference must be a dict task -> value, got '
                            f'{type(reference).__name__}')
        for task in reference:
            get_task_spec(task, 'MultiTaskMetric.stl_reference')
        for task in self.tasks:
            if task not in reference:
                raise ValueError(f'MultiTaskMetric.stl_reference has no value for task {task!r}: '
                                 f'give stl_reference[{task!r}] = the single-task '
                                 f'{main_metric_key(task)}, or stl_reference=None to skip Δm')
            value = reference[task]
            if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value) \
                    or value == 0:
                raise ValueError(f'MultiTaskMetric.stl_reference[{task!r}] must be a finite '
                                 f'non-zero number, got {value!r}')
        return {task: float(reference[task]) for task in self.tasks}

    def _check_num_classes(self, num_classes: Optional[Dict[str, int]]) -> Dict[str, int]:
        if num_classes is None:
            return {}
        if not isinstance(num_classes, Mapping):
            raise TypeError(f'MultiTaskMetric.num_classes must be a dict task -> int, got '
                            f'{type(num_classes).__name__}')
        for task, count in num_classes.items():
            spec = get_task_spec(task, 'MultiTaskMetric.num_classes')
            if spec.kind != 'segmentation':
                raise ValueError(f'MultiTaskMetric.num_classes[{task!r}]: task {task!r} has no '
                                 f'classes (kind {spec.kind!r})')
            if isinstance(count, bool) or not isinstance(count, int) or count < 2:
                raise ValueError(f'MultiTaskMetric.num_classes[{task!r}] must be an integer >= 2, '
                                 f'got {count!r}')
        return dict(num_classes)

    def _read_ids(self, path: Optional[str]) -> Optional[frozenset]:
        if path is None:
            return None
        if 'edge' not in self.tasks:
            raise ValueError(f'MultiTaskMetric.edge_eval_ids={path!r} is given but "edge" is not '
                             f'in tasks {self.tasks}')
        if not osp.isfile(path):
            raise FileNotFoundError(f'MultiTaskMetric.edge_eval_ids: no such file {path!r}')
        with open(path) as f:
            ids = frozenset(line.strip() for line in f if line.strip())
        if not ids:
            raise ValueError(f'MultiTaskMetric.edge_eval_ids: {path!r} lists no image id')
        return ids

    def _class_count(self, task: str) -> int:
        if task in self.num_classes:
            return self.num_classes[task]
        task_classes = (self.dataset_meta or {}).get('task_classes')
        if not isinstance(task_classes, Mapping) or task not in task_classes:
            raise ValueError(f'MultiTaskMetric: number of classes of task {task!r} unknown: give '
                             f'num_classes=dict({task}=...) or evaluate a dataset whose metainfo '
                             f'has task_classes[{task!r}]')
        return len(task_classes[task])

    def _meter(self, task: str) -> TaskMeter:
        if task not in self._meters:
            kind = TASK_SPECS[task].kind
            self._meters[task] = build_task_meter(
                task, self.protocol,
                num_classes=self._class_count(task) if kind == 'segmentation' else None,
                edge_tolerance=self.edge_tolerance, edge_pos_weight=self.edge_pos_weight)
        return self._meters[task]

    # ----------------------------------------------------------------------------- sample access
    @staticmethod
    def _meta(sample: Any, key: str) -> Any:
        if isinstance(sample, BaseDataElement):
            return sample.metainfo.get(key)
        return sample.get(key)

    def _sample_name(self, sample: Any) -> str:
        name = self._meta(sample, 'img_path') or self._meta(sample, 'img_id')
        return repr(name) if name is not None else '<no img_path>'

    def _sample_id(self, sample: Any) -> str:
        img_id = self._meta(sample, 'img_id')
        if img_id is not None:
            return str(img_id)
        img_path = self._meta(sample, 'img_path')
        if img_path is None:
            raise ValueError('MultiTaskMetric.edge_eval_ids needs img_id or img_path in the '
                             'samples\' metainfo')
        return osp.splitext(osp.basename(img_path))[0]

    def _array(self, sample: Any, field: str, task: str) -> np.ndarray:
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
            raise KeyError(f'MultiTaskMetric: sample {self._sample_name(sample)} has no {field!r} '
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
        raise TypeError(f'MultiTaskMetric: {field!r} of sample {self._sample_name(sample)} must '
                        f'hold a tensor (PixelData.data), got {type(value).__name__}')

    @staticmethod
    def _to_meter_shape(array: np.ndarray, channels: int, field: str) -> np.ndarray:
        if channels == 1:
            if array.ndim == 3 and array.shape[0] == 1:
                array = array[0]
            if array.ndim != 2:
                raise ValueError(f'{field} must have shape (1, H, W) or (H, W), got {array.shape}')
        elif array.ndim != 3 or array.shape[0] != channels:
            raise ValueError(f'{field} must have shape ({channels}, H, W), got {array.shape}')
        return array

    # ----------------------------------------------------------------------------- evaluation
    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Count the samples of one batch; appends one ``{task: record or None}`` per sample.

        Args:
            data_batch (Any): The batch from the dataloader (unused).
            data_samples (Sequence[dict | SegDataSample]): The model's outputs with ground truth.
        """
        meters = {task: self._meter(task) for task in self.tasks}
        for sample in data_samples:
            name = self._sample_name(sample)
            inputs: SampleInputs = {}
            for task in self.tasks:
                spec = TASK_SPECS[task]
                if task == 'edge' and self.edge_eval_ids is not None \
                        and self._sample_id(sample) not in self.edge_eval_ids:
                    inputs[task] = None
                    continue
                gt = self._array(sample, spec.gt_field, task)
                pred = self._array(sample, spec.pred_field, task)
                try:
                    inputs[task] = (self._to_meter_shape(pred, spec.channels, spec.pred_field),
                                    self._to_meter_shape(gt, spec.channels, spec.gt_field))
                except ValueError as error:
                    raise task_error(task, name, error) from error
            if self.num_workers == 0:
                self.results.append(sample_records(meters, inputs, name))
                continue
            if self._pool is None:  # the process-wide start method (env_cfg.mp_cfg)
                self._pool = ProcessPoolExecutor(self.num_workers,
                                                 mp_context=multiprocessing.get_context())
            self._pending.append(self._pool.submit(sample_records, meters, inputs, name))
            if len(self._pending) > 4 * self.num_workers:  # bound the queued images
                self._collect(keep=2 * self.num_workers)

    def _collect(self, keep: int = 0) -> None:
        """Move finished records into ``self.results`` in sample order until at most ``keep``
        are pending; on a worker's error stop the pool and re-raise."""
        try:
            while len(self._pending) > keep:
                self.results.append(self._pending.popleft().result())
        except BaseException:
            self._stop_workers()
            raise

    def _stop_workers(self) -> None:
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def evaluate(self, size: int) -> Dict[str, float]:
        """Wait for the worker processes, then gather and reduce as ``BaseMetric`` does."""
        self._collect()
        self._stop_workers()
        return super().evaluate(size)

    def compute_metrics(self, results: List[Dict[str, Any]]) -> Dict[str, float]:
        """Reduce the per-sample records of the whole set; log and return the flat metric dict."""
        metrics: Dict[str, float] = {}
        for task in self.tasks:
            records = [result[task] for result in results if result[task] is not None]
            if not records:
                raise ValueError(
                    f'MultiTaskMetric: no sample counted for task {task!r} out of {len(results)} '
                    f'(samples without labelled pixels are skipped; for human_parts, samples '
                    f'without any part; for edge, samples not listed in edge_eval_ids)')
            for name, value in self._meter(task).compute(records).items():
                metrics[f'{task}/{name}'] = float(value)
            assert main_metric_key(task) in metrics, f'meter of {task} lacks {MAIN_METRICS[task]}'
        if self.stl_reference is not None:
            deltas = per_task_delta_m({task: metrics[main_metric_key(task)] for task in self.tasks},
                                      self.stl_reference)
            metrics['multitask/delta_m'] = float(np.mean(list(deltas.values())))
            for task, delta in deltas.items():
                metrics[f'multitask/delta_{task}'] = float(delta)
        self._log_table(metrics, results)
        return metrics

    def _log_table(self, metrics: Dict[str, float], results: List[Dict[str, Any]]) -> None:
        table = PrettyTable(field_names=['metric', 'value', 'images'])
        table.align['metric'] = 'l'
        table.align['value'] = 'r'
        for key, value in metrics.items():
            task = key.split('/')[0]
            counted = sum(result[task] is not None for result in results) if task in self.tasks \
                else len(results)
            table.add_row([key, f'{value:.4f}', counted])
        print_log(f'MultiTaskMetric (protocol {self.protocol!r}):\n{table.get_string()}',
                  logger='current')
