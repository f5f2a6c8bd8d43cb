"""Dataset options shared by the multi-task datasets: declared tasks and low-resource labels.

- ``custom_tasks``: task declarations (``mmase.tasks``) declared when the dataset is built (and
  again when a worker process unpickles it), so the dataset can load a task it does not know
  itself: one with an ``annotation`` (``<data_root>/<annotation.dir>/<id><suffix>``).
- ``label_fraction``: ``dict(<task>=fraction in (0, 1] or count >= 1)``: keep the labels of that
  many images of the split for the task (the others stay fully labelled). The kept images are a
  seeded random subset (``label_seed``, the task name), the same on every run and process; the
  other images carry ``unlabelled_tasks=[<task>, ...]`` and ``LoadMultiTaskAnnotations`` gives
  them an all-ignore map, so they add no loss for the task (Task-MoE's low-resource transfer).
"""
import zlib
from numbers import Real
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.logging import print_log

from mmase.tasks import TASK_SPECS, check_tasks, declare_tasks, get_task_spec


class TaskOptionsMixin:
    """Mixin of :class:`PascalContextMTDataset` and :class:`NYUDv2MTDataset` (see module)."""

    def _init_task_options(self, tasks: Sequence[str], builtin: Sequence[str],
                           custom_tasks: Optional[Sequence[dict]],
                           label_fraction: Optional[Dict[str, Union[float, int]]],
                           label_seed: int, test_mode: bool) -> Tuple[str, ...]:
        """Declare ``custom_tasks``, check ``tasks`` and ``label_fraction``; returns the tasks."""
        self.custom_tasks = list(custom_tasks or [])
        declare_tasks(self.custom_tasks, f'{type(self).__name__}.custom_tasks')
        readable = tuple(builtin) + tuple(t for t, s in TASK_SPECS.items()
                                          if t not in builtin and s.annotation is not None)
        tasks = check_tasks(tasks, 'tasks', readable)
        self.label_fraction = self._check_label_fraction(label_fraction, tasks, test_mode)
        if isinstance(label_seed, bool) or not isinstance(label_seed, int):
            raise ValueError(f'{type(self).__name__}.label_seed must be an int, got '
                             f'{label_seed!r}')
        self.label_seed = label_seed
        return tasks

    def _check_label_fraction(self, label_fraction, tasks, test_mode) -> Dict[str, float]:
        field = f'{type(self).__name__}.label_fraction'
        if not label_fraction:
            return {}
        if not isinstance(label_fraction, dict):
            raise TypeError(f'{field} must be a dict task -> fraction or count, got '
                            f'{label_fraction!r}')
        if test_mode:
            raise ValueError(f'{field} is for training sets; this one has test_mode=True')
        for task, value in label_fraction.items():
            if task not in tasks:
                raise ValueError(f'{field}[{task!r}]: {task!r} is not one of the dataset tasks '
                                 f'{tasks}')
            ok = isinstance(value, Real) and not isinstance(value, bool) and (
                (isinstance(value, int) and value >= 1) or
                (isinstance(value, float) and 0 < value <= 1))
            if not ok:
                raise ValueError(f'{field}[{task!r}] must be a fraction in (0, 1] (float) or an '
                                 f'image count >= 1 (int), got {value!r}')
        return dict(label_fraction)

    def _declared_paths(self, info: dict, img_id: str, root: str) -> List[str]:
        """Set ``<task>_path`` for the declared tasks among ``self.tasks``; return the paths."""
        import os.path as osp
        paths = []
        for task in self.tasks:
            spec = get_task_spec(task)
            if task in self.BUILTIN_TASKS or spec.annotation is None:
                continue
            ann = spec.annotation
            info[f'{task}_path'] = osp.join(root, ann['dir'], img_id + ann['suffix'])
            paths.append(info[f'{task}_path'])
        return paths

    def _apply_label_fraction(self, data_list: List[dict]) -> List[dict]:
        """Mark the images whose labels of a ``label_fraction`` task are dropped."""
        for task, value in self.label_fraction.items():
            total = len(data_list)
            keep = value if isinstance(value, int) else max(1, int(round(value * total)))
            if keep > total:
                raise ValueError(f'{type(self).__name__}.label_fraction[{task!r}]={value} '
                                 f'exceeds the {total} images of {self.ann_file}')
            rng = np.random.default_rng([self.label_seed, zlib.crc32(task.encode())])
            kept = set(rng.permutation(total)[:keep].tolist())
            for i, info in enumerate(data_list):
                if i not in kept:
                    info['unlabelled_tasks'] = list(info.get('unlabelled_tasks', [])) + [task]
            print_log(f'{type(self).__name__}: task {task!r} keeps the labels of {keep} of '
                      f'{total} images of {self.ann_file} (label_fraction={value}, '
                      f'label_seed={self.label_seed})', logger='current')
        return data_list

    def labelled_ids(self, task: str) -> List[str]:
        """Ids of the images that keep ``task``'s labels."""
        return [info['img_id'] for info in (self.get_data_info(i) for i in range(len(self)))
                if task not in info.get('unlabelled_tasks', ())]

    def __setstate__(self, state: dict) -> None:
        # a worker process started by 'spawn' gets the dataset by pickle: declare its tasks there
        self.__dict__.update(state)
        declare_tasks(self.__dict__.get('custom_tasks'), f'{type(self).__name__}.custom_tasks')
