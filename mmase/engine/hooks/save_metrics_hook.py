"""Write the validation / test metrics of every evaluation to JSON in the work dir."""
import json
import math
import os
import os.path as osp
from typing import Dict, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


def _to_builtin(value):
    """numpy / torch scalars -> float; non-finite numbers -> None (valid JSON)."""
    if hasattr(value, 'item'):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(path: str, obj) -> None:
    """Write ``obj`` as JSON to ``path`` through a temporary file and a rename."""
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


@HOOKS.register_module()
class SaveMetricsHook(Hook):
    """Save each evaluation's metrics dict as JSON (rank 0 only).

    Files: ``<work_dir>/metrics_val_iter_<N>.json`` (or ``_epoch_<N>``) after validation and
    ``<work_dir>/metrics_test.json`` after testing; ``tools/analysis/delta_m.py`` reads them.
    """

    priority = 'LOW'

    def _save(self, runner, name: str, metrics: Optional[Dict]) -> None:
        if not metrics or not is_main_process():
            return
        os.makedirs(runner.work_dir, exist_ok=True)
        data = {k: _to_builtin(v) for k, v in metrics.items()}
        write_json_atomic(osp.join(runner.work_dir, name), data)

    def after_val_epoch(self, runner, metrics: Optional[Dict] = None) -> None:
        by_epoch = getattr(runner.train_loop, 'by_epoch', False) if runner._train_loop else False
        step = f'epoch_{runner.epoch}' if by_epoch else f'iter_{runner.iter}'
        self._save(runner, f'metrics_val_{step}.json', metrics)

    def after_test_epoch(self, runner, metrics: Optional[Dict] = None) -> None:
        self._save(runner, 'metrics_test.json', metrics)
