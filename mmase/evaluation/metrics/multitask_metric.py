"""``MultiTaskMetric``: every task's metrics and Δm from one pass over the predictions."""
import multiprocessing
import os.path as osp
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.structures import BaseDataElement
from mmseg.registry import METRICS

from mmase.tasks import check_tasks, declare_tasks, get_task_spec
from ..delta_m import (metric_lower_is_better, parse_stl_reference, per_task_delta_m,
                       resolve_main_metrics)
from .edge_meter import EdgeMeter, check_edge_matcher
from .metric_samples import (SampleInputs, sample_array, sample_id, sample_name,
                             sample_records, task_error, to_meter_shape)
from .metric_tables import log_class_table, log_main_metrics, log_metric_table
from .task_metrics import (TaskMeter, build_task_meter, check_protocol, meter_class,
                           task_metric_names)


@METRICS.register_module()
class MultiTaskMetric(BaseMetric):
    """Evaluate every task of a multi-task model and, given single-task references, Δm.

    Each sample must carry ``gt_<field>`` and ``pred_<field>`` for every task (fields from the
    task declarations, ``mmase.tasks``; values ``PixelData``, ``{'data': tensor}`` as mmengine's
    evaluator passes them, tensors or arrays), the prediction at the ground truth's size. :meth:`process`
    keeps only small per-sample counts, so the memory does not grow with the image size and mmengine
    can gather the results from several processes.

    Returned keys (IoU and F in percent, angles in degrees, depth in metres):

    - ``semseg/mIoU``, ``human_parts/mIoU`` (images without any part are left out);
    - ``sal/maxF`` (per ``protocol``), ``sal/mIoU`` (the ASTMT / MTLoRA meter, every protocol),
      ``sal/mIoU_pooled`` (two-class IoU at 0.5); with ``'invpt'`` also ``sal/maxF_atrc`` (the
      maxF without the second sigmoid of the InvPT meter);
    - ``normals/mErr``; with ``'astmt'`` also ``normals/median``, ``normals/rmse``,
      ``normals/within11.25``, ``normals/within22.5``, ``normals/within30``;
    - ``edge/odsF`` (SEISM's one-to-one matching, see ``EdgeMeter``), ``edge/loss`` (balanced
      BCE);
    - ``depth/rmse``, ``depth/abs_rel``, ``depth/delta1``;
    - with ``stl_reference``: ``multitask/delta_m`` and ``multitask/delta_<task>`` (percent),
      each task's Δ taken on its main metric (``main_metrics``).

    Besides the full table, the log shows a summary of the main metrics (with their direction and
    Δ against the reference) in the column order of ASE's Table 1.

    Args:
        tasks (Sequence[str]): Tasks to evaluate.
        protocol (str): ``'invpt'`` (default) | ``'astmt'`` | ``'atrc'``; see
            ``mmase.evaluation.metrics.task_metrics``.
        main_metrics (dict, optional): Task -> name of its main metric, the one of Δm and of the
            summary (a name this ``protocol`` computes for the task, e.g. ``sal='mIoU'``,
            ``edge='loss'`` for ASE's ablations, lower is better). Tasks not given take the metric
            ``stl_reference['metrics']`` names, else ``MAIN_METRICS`` (``semseg`` / ``human_parts``
            mIoU, ``sal`` maxF, ``normals`` mErr, ``edge`` odsF, ``depth`` rmse). May hold tasks
            outside ``tasks``. Default: None.
        stl_reference (dict, optional): Task -> single-task value of its main metric, in the
            units above and measured with the same protocol; optionally with the keys ``source``
            (where the numbers come from, named in errors) and ``metrics`` (task -> the metric
            each value is; it must agree with ``main_metrics``), as the files of
            ``configs/_base_/stl_reference/`` write them. Must hold every task of ``tasks``
            (more are allowed). When given, Δm is reported. Default: None.
        num_classes (dict, optional): Task -> number of classes for the segmentation tasks. Tasks
            not given here take ``len(dataset_meta['task_classes'][task])``. Default: None.
        edge_tolerance (float): Edge matching distance, fraction of the image diagonal (0.0075
            PASCAL, 0.011 NYUD). Default: 0.0075.
        edge_pos_weight (float): Positive weight of the balanced BCE edge loss. Default: 0.95.
        edge_matcher (str): ``'exact'`` (maximum matching, < 0.1 s per PASCAL image) or
            ``'seism'`` (pyEdgeEval's ``correspond_pixels``, its numbers, ~20 s per image; needs
            the ``seism`` extra, checked here). docs/evaluation.md. Default: ``'exact'``.
        edge_eval_ids (str, optional): Path of a text file of image ids, one a line: only those
            images count for the edge tasks (``edge``, or a declared task whose meter is
            ``EdgeMeter``; e.g. SEISM's ``test_new`` list, 2498 of PASCAL-Context's 5105
            val images). A sample's id is its metainfo ``img_id``, else the stem of ``img_path``.
            Default: None (all).
        num_workers (int): Worker processes that compute the per-sample counts while the model
            runs (edge odsF costs 0.02-0.3 s per PASCAL image, the rest milliseconds: see
            docs/evaluation.md); started at the
            first batch of an evaluation and stopped at its end, with the process-wide start
            method (``env_cfg.mp_cfg.mp_start_method``, 'fork' in the shipped configs; with
            'spawn' the launching script needs the ``if __name__ == '__main__'`` guard, as
            ``tools/test.py`` has). 0 computes them in the calling process. The results do not
            depend on it. Default: 0.
        collect_device (str): Device for gathering results across processes. Default: 'cpu'.
        prefix (str, optional): Prefix of the metric names. Default: None.
        collect_dir (str, optional): Directory for collecting results on CPU. Default: None.
        edge_save_dir (str, optional): Also write each sample's edge probability to
            ``<edge_save_dir>/<id>.png`` (8-bit, ``round(255 p)``, at the ground truth's size: the
            format SEISM and ``tools/analysis/eval_edges.py`` read; every sample, whatever
            ``edge_eval_ids``). ``tools/test.py --save-edges DIR`` sets it. Default: None.
        custom_tasks (list[dict], optional): Task declarations (``mmase.tasks``) to declare
            before ``tasks`` are checked, e.g. ``[dict(type='DenseTask', name=..., ...)]``; each
            task is scored by the meter its declaration names. Default: None.
        output_dir (str, optional): Also write each task's prediction as
            ``<output_dir>/<task>/<id>.png`` (the encoding of ``tools/test.py --out DIR``:
            :func:`mmase.visualization.encode_prediction`). mmseg's ``tools/test.py --out DIR``
            sets it, as for ``IoUMetric``. Default: None.
        keep_results (bool): Set by mmseg's ``tools/test.py --out`` beside ``output_dir``; the
            files written there are always kept. Default: True.
    """

    def __init__(self,
                 tasks: Sequence[str],
                 protocol: str = 'invpt',
                 stl_reference: Optional[Dict[str, float]] = None,
                 main_metrics: Optional[Dict[str, str]] = None,
                 num_classes: Optional[Dict[str, int]] = None,
                 edge_tolerance: float = 0.0075,
                 edge_pos_weight: float = 0.95,
                 edge_matcher: str = 'exact',
                 edge_eval_ids: Optional[str] = None,
                 num_workers: int = 0,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None,
                 edge_save_dir: Optional[str] = None,
                 custom_tasks: Optional[Sequence[dict]] = None,
                 output_dir: Optional[str] = None,
                 keep_results: bool = True) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.output_dir = output_dir
        self.keep_results = keep_results
        self.custom_tasks = declare_tasks(custom_tasks, 'MultiTaskMetric.custom_tasks')
        self.tasks = check_tasks(tasks, 'MultiTaskMetric.tasks')
        self.protocol = check_protocol(protocol, 'MultiTaskMetric.protocol')
        self.stl_reference, self.main_metrics = self._check_main_metrics(stl_reference,
                                                                         main_metrics)
        self.num_classes = self._check_num_classes(num_classes)
        self.edge_tolerance = edge_tolerance
        self.edge_pos_weight = edge_pos_weight
        self.edge_matcher = check_edge_matcher(edge_matcher, 'MultiTaskMetric.edge_matcher')
        #: the tasks scored by the edge meter (``edge``, or a declared task naming EdgeMeter):
        #: ``edge_eval_ids`` and ``edge_save_dir`` apply to them
        self.edge_tasks = tuple(t for t in self.tasks if issubclass(meter_class(t), EdgeMeter))
        self.edge_eval_ids = self._read_ids(edge_eval_ids)
        self._meters: Dict[str, TaskMeter] = {}
        #: per-class IoU / Acc of the class-map tasks of the last evaluation (rank 0)
        self.per_class_results: Dict[str, Dict[str, dict]] = {}
        for task in self.edge_tasks:
            self._meter(task)  # validates edge_tolerance / edge_pos_weight now
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f'MultiTaskMetric.num_workers must be an int >= 0, got '
                             f'{num_workers!r}')
        self.num_workers = num_workers
        self._pool: Optional[ProcessPoolExecutor] = None
        self._pending: Deque[Future] = deque()
        if edge_save_dir is not None and not self.edge_tasks:
            raise ValueError(f'MultiTaskMetric.edge_save_dir={edge_save_dir!r} is given but '
                             f'no task of {self.tasks} is an edge task ("edge" is not in tasks '
                             f'and no declared task names the EdgeMeter)')
        self.edge_save_dir = edge_save_dir

    # ----------------------------------------------------------------------------- configuration
    def _check_main_metrics(
            self, reference: Optional[Dict[str, float]], main_metrics: Optional[Dict[str, str]]
    ) -> Tuple[Optional[Dict[str, float]], Dict[str, str]]:
        """Check ``stl_reference`` and ``main_metrics``; return the reference values (None: no
        Δm) and each task's main metric."""
        parsed = None
        if reference is not None:
            parsed = parse_stl_reference(reference, self.tasks, 'MultiTaskMetric.stl_reference')
        chosen = resolve_main_metrics(
            self.tasks, main_metrics, parsed.metrics if parsed else None,
            field='MultiTaskMetric.main_metrics', defaults_field='MultiTaskMetric.stl_reference'
            + (f' ({parsed.source})' if parsed and parsed.source else '') + '.metrics')
        for task, metric in chosen.items():
            computed = task_metric_names(task, self.protocol)
            if metric not in computed:
                raise ValueError(f'MultiTaskMetric.main_metrics[{task!r}]={metric!r}: protocol '
                                 f'{self.protocol!r} does not compute {task}/{metric}; it '
                                 f'computes {list(computed)}')
            metric_lower_is_better(task, metric, 'MultiTaskMetric.main_metrics')
        return (parsed.values if parsed else None), chosen

    def _check_num_classes(self, num_classes: Optional[Dict[str, int]]) -> Dict[str, int]:
        if num_classes is None:
            return {}
        if not isinstance(num_classes, Mapping):
            raise TypeError(f'MultiTaskMetric.num_classes must be a dict task -> int, got '
                            f'{type(num_classes).__name__}')
        for task, count in num_classes.items():
            spec = get_task_spec(task, 'MultiTaskMetric.num_classes')
            if 'num_classes' not in meter_class(task).CONTEXT_ARGS:
                raise ValueError(f'MultiTaskMetric.num_classes[{task!r}]: task {task!r} has no '
                                 f'classes (kind {spec.kind!r})')
            if isinstance(count, bool) or not isinstance(count, int) or count < 2:
                raise ValueError(f'MultiTaskMetric.num_classes[{task!r}] must be an integer >= 2, '
                                 f'got {count!r}')
        return dict(num_classes)

    def _read_ids(self, path: Optional[str]) -> Optional[frozenset]:
        if path is None:
            return None
        if not self.edge_tasks:
            raise ValueError(f'MultiTaskMetric.edge_eval_ids={path!r} is given but no task of '
                             f'{self.tasks} is an edge task ("edge" is not in tasks and no '
                             f'declared task names the EdgeMeter)')
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
        if get_task_spec(task).num_classes is not None:
            return get_task_spec(task).num_classes
        task_classes = (self.dataset_meta or {}).get('task_classes')
        if not isinstance(task_classes, Mapping) or task not in task_classes:
            raise ValueError(f'MultiTaskMetric: number of classes of task {task!r} unknown: give '
                             f'num_classes=dict({task}=...) or evaluate a dataset whose metainfo '
                             f'has task_classes[{task!r}]')
        return len(task_classes[task])

    def _meter(self, task: str) -> TaskMeter:
        if task not in self._meters:
            needs_classes = 'num_classes' in meter_class(task).CONTEXT_ARGS
            self._meters[task] = build_task_meter(
                task, self.protocol,
                num_classes=self._class_count(task) if needs_classes else None,
                edge_tolerance=self.edge_tolerance, edge_pos_weight=self.edge_pos_weight,
                edge_matcher=self.edge_matcher)
        return self._meters[task]

    # ----------------------------------------------------------------------------- evaluation
    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Count the samples of one batch; appends one ``{task: record or None}`` per sample.

        Args:
            data_batch (Any): The batch from the dataloader (unused).
            data_samples (Sequence[dict | SegDataSample]): The model's outputs with ground truth.
        """
        meters = {task: self._meter(task) for task in self.tasks}
        for sample in data_samples:
            name = sample_name(sample)
            inputs: SampleInputs = {}
            for task in self.tasks:
                spec = get_task_spec(task)
                if task in self.edge_tasks and self.edge_eval_ids is not None \
                        and sample_id(sample) not in self.edge_eval_ids:
                    inputs[task] = None
                    continue
                gt = sample_array(sample, spec.gt_field, task)
                pred = sample_array(sample, spec.pred_field, task)
                try:
                    inputs[task] = (to_meter_shape(pred, spec.channels, spec.pred_field),
                                    to_meter_shape(gt, spec.channels, spec.gt_field))
                except ValueError as error:
                    raise task_error(task, name, error) from error
            if self.edge_save_dir is not None:
                for task in self.edge_tasks:
                    self._save_edge(sample, name, task)
            if self.output_dir is not None:
                self._save_predictions(sample)
            if self.num_workers == 0:
                self.results.append(sample_records(meters, inputs, name))
                continue
            if self._pool is None:  # the process-wide start method (env_cfg.mp_cfg)
                self._pool = ProcessPoolExecutor(self.num_workers,
                                                 mp_context=multiprocessing.get_context())
            self._pending.append(self._pool.submit(sample_records, meters, inputs, name))
            if len(self._pending) > 4 * self.num_workers:  # bound the queued images
                self._collect(keep=2 * self.num_workers)

    def _save_edge(self, sample: Any, name: str, task: str) -> None:
        """Write the sample's ``task`` probability as ``<edge_save_dir>/<id>.png``
        (``<edge_save_dir>/<task>/<id>.png`` when several tasks are edge tasks)."""
        from .edge_files import write_edge_png
        spec = get_task_spec(task)
        pred = sample_array(sample, spec.pred_field, task)
        folder = self.edge_save_dir if len(self.edge_tasks) == 1 else \
            osp.join(self.edge_save_dir, task)
        try:
            write_edge_png(to_meter_shape(pred, spec.channels, spec.pred_field),
                           osp.join(folder, sample_id(sample) + '.png'))
        except ValueError as error:
            raise task_error(task, name, error) from error

    def _save_predictions(self, sample: Any) -> None:
        """Write every task's prediction as ``<output_dir>/<task>/<id>.png``."""
        from mmengine.structures import PixelData

        from mmase.visualization.task_maps import save_predictions
        element = BaseDataElement()
        for task in self.tasks:
            field = get_task_spec(task).pred_field
            element.set_field(PixelData(data=torch.as_tensor(sample_array(sample, field, task))),
                              field)
        save_predictions(element, list(self.tasks), self.output_dir, sample_id(sample))

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
        self.per_class_results = {}
        for task in self.tasks:
            records = [result[task] for result in results if result[task] is not None]
            if not records:
                raise ValueError(
                    f'MultiTaskMetric: no sample counted for task {task!r} out of {len(results)} '
                    f'(samples without labelled pixels are skipped; for human_parts, samples '
                    f'without any part; for edge, samples not listed in edge_eval_ids)')
            meter = self._meter(task)
            computed = meter.compute(records)
            if hasattr(meter, 'class_scores'):  # class maps: mmseg's per-class table
                names = ((self.dataset_meta or {}).get('task_classes') or {}).get(task)
                self.per_class_results[task] = log_class_table(
                    task, meter.class_scores(records), names)
            for name, value in computed.items():
                metrics[f'{task}/{name}'] = float(value)
            if self.main_metrics[task] not in computed:
                raise ValueError(f'MultiTaskMetric.main_metrics[{task!r}]='
                                 f'{self.main_metrics[task]!r}: the {task} meter returned no such '
                                 f'metric, only {sorted(computed)}')
        deltas = None
        if self.stl_reference is not None:
            deltas = per_task_delta_m(
                {task: metrics[self.main_metric_key(task)] for task in self.tasks},
                self.stl_reference,
                {task: metric_lower_is_better(task, self.main_metrics[task])
                 for task in self.tasks})
            metrics['multitask/delta_m'] = float(np.mean(list(deltas.values())))
            for task, delta in deltas.items():
                metrics[f'multitask/delta_{task}'] = float(delta)
        log_metric_table(self.protocol, self.tasks, metrics, results)
        log_main_metrics(self.tasks, self.main_metrics, metrics, deltas, self.stl_reference)
        return metrics

    def main_metric_key(self, task: str) -> str:
        """Metric-dict key of ``task``'s main metric (``main_metrics``), e.g. ``'sal/mIoU'``."""
        return f'{task}/{self.main_metrics[task]}'
