"""Write the validation / test metrics of every evaluation to JSON in the work dir."""
import json
import math
import os
import os.path as osp
from typing import Dict, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop
from mmseg.registry import HOOKS

from ..atomic_local_backend import write_atomic


def _to_builtin(value):
    """numpy / torch scalars -> float; non-finite numbers -> None (valid JSON)."""
    if hasattr(value, 'item'):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(path: str, obj) -> None:
    """Write ``obj`` as JSON to ``path`` through a temporary file and a rename
    (:func:`~mmase.engine.atomic_local_backend.write_atomic`: a failed write, e.g. a full
    disk, names ``path``)."""
    write_atomic(json.dumps(obj, indent=2, sort_keys=True).encode('utf-8'), path)


@HOOKS.register_module()
class SaveMetricsHook(Hook):
    """Save each evaluation's metrics dict as JSON (rank 0 only).

    Files: ``<work_dir>/metrics_val_iter_<N>.json`` (or ``_epoch_<N>``) after validation and
    ``<work_dir>/metrics_test.json`` after testing; ``tools/analysis/delta_m.py`` reads them.
    After a test, the per-class IoU / Acc of the class-map tasks (an evaluator metric's
    ``per_class_results``, e.g. ``MultiTaskMetric``'s) go to ``<work_dir>/per_class_iou.json``.

    A validation left unfinished by a killed run is run on resume: the checkpoint of step N is
    saved before the validation of step N, so a run killed during that validation resumes at
    N and (at the last step) would end without it. When a resumed run starts at a validation
    step whose metrics file is missing, this hook runs that validation first (in the first
    ``before_train_epoch``, or in ``after_train`` when no epoch is left), then training goes on.
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self._pending_checked = False

    @staticmethod
    def _by_epoch(loop) -> bool:
        """Whether ``loop`` counts epochs (mmengine's loops carry no ``by_epoch`` flag)."""
        return isinstance(loop, EpochBasedTrainLoop)

    @classmethod
    def _step_name(cls, runner) -> str:
        # the built loop only: reading ``runner.train_loop`` would build one in a val-only run
        by_epoch = cls._by_epoch(getattr(runner, '_train_loop', None))
        return f'epoch_{runner.epoch}' if by_epoch else f'iter_{runner.iter}'

    @classmethod
    def _is_validation_step(cls, runner) -> bool:
        """Whether the train loop validates at the step the run is at now (``runner.iter`` /
        ``runner.epoch``), as mmengine's ``IterBasedTrainLoop`` / ``EpochBasedTrainLoop``
        decide it."""
        loop = runner.train_loop
        if runner.val_loop is None or not hasattr(loop, 'val_interval'):
            return False
        by_epoch = cls._by_epoch(loop)
        step = runner.epoch if by_epoch else runner.iter
        last = loop.max_epochs if by_epoch else loop.max_iters
        return step > 0 and step >= loop.val_begin and (step % loop.val_interval == 0
                                                        or step == last)

    def _run_pending_validation(self, runner) -> None:
        if self._pending_checked:
            return
        self._pending_checked = True
        if not self._is_validation_step(runner):
            return
        name = f'metrics_val_{self._step_name(runner)}.json'
        pending = not osp.isfile(osp.join(runner.work_dir, name))
        from mmengine.dist import broadcast_object_list, get_world_size
        if get_world_size() > 1:  # every rank validates, or none: rank 0's file decides
            flag = [pending]
            broadcast_object_list(flag)
            pending = flag[0]
        if pending:
            runner.logger.info(f'SaveMetricsHook: {name} is missing: running the validation '
                               f'that the previous run of {runner.work_dir} did not finish')
            runner.val_loop.run()

    def before_train(self, runner) -> None:
        self._pending_checked = False

    def before_train_epoch(self, runner) -> None:
        self._run_pending_validation(runner)

    def after_train(self, runner) -> None:
        self._run_pending_validation(runner)

    def _save(self, runner, name: str, metrics: Optional[Dict]) -> None:
        if not metrics or not is_main_process():
            return
        os.makedirs(runner.work_dir, exist_ok=True)
        data = {k: _to_builtin(v) for k, v in metrics.items()}
        write_json_atomic(osp.join(runner.work_dir, name), data)

    def after_val_epoch(self, runner, metrics: Optional[Dict] = None) -> None:
        self._save(runner, f'metrics_val_{self._step_name(runner)}.json', metrics)

    def after_test_epoch(self, runner, metrics: Optional[Dict] = None) -> None:
        self._save(runner, 'metrics_test.json', metrics)
        per_class = {}
        loop = getattr(runner, '_test_loop', None)  # after a test: the built TestLoop
        for metric in getattr(getattr(loop, 'evaluator', None), 'metrics', None) or []:
            per_class.update(getattr(metric, 'per_class_results', None) or {})
        if per_class and is_main_process():
            write_json_atomic(osp.join(runner.work_dir, 'per_class_iou.json'), per_class)
