"""Per-class IoU / accuracy tables of the segmentation tasks at the end of a test (as mmseg's
``IoUMetric`` prints them)."""
from typing import Dict, List, Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS
from prettytable import PrettyTable

from mmase.tasks import get_task_spec


def confusion_matrix(gt: torch.Tensor, pred: torch.Tensor, num_classes: int,
                     ignore_index: int) -> np.ndarray:
    """``(K, K)`` int64 counts, rows = ground truth, columns = prediction; pixels whose ground
    truth is ``ignore_index`` (or outside ``[0, K)``) are left out."""
    gt = gt.reshape(-1).long()
    pred = pred.reshape(-1).long()
    keep = (gt != ignore_index) & (gt >= 0) & (gt < num_classes)
    pred = pred[keep].clamp(0, num_classes - 1)
    counts = torch.bincount(gt[keep] * num_classes + pred, minlength=num_classes ** 2)
    return counts.view(num_classes, num_classes).cpu().numpy().astype(np.int64)


def per_class_scores(matrix: np.ndarray) -> Dict[str, np.ndarray]:
    """IoU_c = TP / (TP + FP + FN) and Acc_c = TP / (TP + FN) in percent (NaN where undefined:
    a class absent from both ground truth and prediction has no IoU)."""
    tp = np.diag(matrix).astype(np.float64)
    gt = matrix.sum(axis=1).astype(np.float64)
    pred = matrix.sum(axis=0).astype(np.float64)
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = tp / (gt + pred - tp) * 100
        acc = tp / gt * 100
    return dict(IoU=iou, Acc=acc)


def iou_table(matrix: np.ndarray, class_names: List[str]) -> PrettyTable:
    """mmseg's per-class table: Class | IoU | Acc (2 decimals, 'nan' where undefined)."""
    scores = per_class_scores(matrix)
    table = PrettyTable()
    table.field_names = ['Class', 'IoU', 'Acc']
    for i, name in enumerate(class_names):
        table.add_row([name, f'{scores["IoU"][i]:.2f}', f'{scores["Acc"][i]:.2f}'])
    return table


@HOOKS.register_module()
class PerClassIoUHook(Hook):
    """Accumulate a confusion matrix per segmentation task over the test set and log its
    per-class IoU table (``tools/test.py --per-class``; ``--work-dir`` also gets
    ``per_class_iou.json``). Images whose ``human_parts`` ground truth has no part pixel are
    left out, as in the parts metric (ours: applied to every task named in
    ``skip_no_foreground``).

    Args:
        skip_no_foreground (Sequence[str]): Tasks whose all-background images are skipped.
            Default ``('human_parts', )``.
    """

    priority = 'LOW'

    def __init__(self, skip_no_foreground=('human_parts', )):
        self.skip_no_foreground = tuple(skip_no_foreground)
        #: image path -> task -> its confusion matrix (kept per image so that a distributed
        #: test can drop the images its sampler repeats to even out the ranks)
        self.per_image: Dict[str, Dict[str, np.ndarray]] = {}

    def before_test(self, runner) -> None:
        self.per_image = {}

    def _num_classes(self, runner, task: str) -> Optional[int]:
        names = (runner.test_dataloader.dataset.metainfo.get('task_classes') or {}).get(task)
        if names:
            return len(names)
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        heads = getattr(model, 'decode_heads', None)
        num = getattr(heads[task], 'num_classes', None) if heads is not None and \
            task in heads else None
        if num is None:
            raise ValueError(f'PerClassIoUHook: no class count for {task!r} (neither the '
                             f"dataset's task_classes nor the head's num_classes)")
        return num

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        for task in getattr(model, 'tasks', ()):
            spec = get_task_spec(task)
            if spec.activation != 'argmax':  # class maps only
                continue
            num = self._num_classes(runner, task)
            for sample in outputs or []:
                if spec.gt_field not in sample or spec.pred_field not in sample:
                    continue
                gt = getattr(sample, spec.gt_field).data
                if task in self.skip_no_foreground and not (
                        (gt != spec.ignore_value) & (gt != 0)).any():
                    continue
                matrix = confusion_matrix(gt, getattr(sample, spec.pred_field).data, num,
                                          int(spec.ignore_value))
                key = sample.metainfo.get('img_path', f'{batch_idx}:{len(self.per_image)}')
                self.per_image.setdefault(key, {})[task] = matrix

    def after_test_epoch(self, runner, metrics=None) -> None:
        import json
        import os.path as osp
        from mmengine.dist import all_gather_object, get_world_size
        meta = runner.test_dataloader.dataset.metainfo
        per_image = dict(self.per_image)
        if get_world_size() > 1:  # every rank's images, each once
            for part in all_gather_object(self.per_image):
                per_image.update(part)
        matrices: Dict[str, np.ndarray] = {}
        for tasks in per_image.values():
            for task, matrix in tasks.items():
                matrices[task] = matrices.get(task, 0) + matrix
        report = {}
        for task, matrix in matrices.items():
            names = list((meta.get('task_classes') or {}).get(task) or
                         [f'class {i}' for i in range(len(matrix))])
            print_log(f'per class results ({task}):\n{iou_table(matrix, names).get_string()}',
                      logger='current')
            scores = per_class_scores(matrix)
            report[task] = {name: dict(IoU=None if np.isnan(i) else float(i),
                                       Acc=None if np.isnan(a) else float(a))
                            for name, i, a in zip(names, scores['IoU'], scores['Acc'])}
        if report and runner.rank == 0:
            with open(osp.join(runner.work_dir, 'per_class_iou.json'), 'w') as f:
                json.dump(report, f, indent=1)
