"""``tools/test.py --out DIR``: every test image's per-task prediction maps as files."""
import os.path as osp
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from mmase.visualization.task_maps import save_predictions


@HOOKS.register_module()
class SavePredictionsHook(Hook):
    """Write ``out_dir/<task>/<img_id>.png`` for each test prediction (mmseg's ``--out`` for
    several tasks; encoding: :func:`mmase.visualization.encode_prediction`, depth uint16 mm or
    ``.npy`` metres).

    Args:
        out_dir (str): Output folder (created).
        tasks (Sequence[str], optional): Tasks to write. Default: the model's.
        depth_format (str): ``'png'`` (uint16 millimetres) or ``'npy'`` (float32 metres).
    """

    priority = 'LOW'

    def __init__(self, out_dir: str, tasks: Optional[Sequence[str]] = None,
                 depth_format: str = 'png'):
        if depth_format not in ('png', 'npy'):
            raise ValueError(f'SavePredictionsHook.depth_format must be png or npy, got '
                             f'{depth_format!r}')
        self.out_dir = out_dir
        self.tasks = tasks
        self.depth_format = depth_format

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        tasks = list(self.tasks or getattr(model, 'tasks', ()))
        for sample in outputs or []:
            name = sample.metainfo.get('img_id') or osp.splitext(
                osp.basename(sample.metainfo['img_path']))[0]
            save_predictions(sample, tasks, self.out_dir, str(name), self.depth_format)
