"""NYUD-v2 multi-task dataset (both public archives of the NYUD-v2 multi-task split)."""
import logging
import os.path as osp
from typing import Dict, List, Optional, Sequence

import mmengine.fileio as fileio
import numpy as np
from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .nyud_labels import NYUD_CLASSES, NYUD_MT_TASKS, NYUD_PALETTE, NYUD_PATH_KEYS, load_npy
from .split_file import read_split_ids
from .task_options import TaskOptionsMixin


@DATASETS.register_module()
class NYUDv2MTDataset(TaskOptionsMixin, BaseSegDataset):
    """NYUD-v2 for multi-task dense prediction (semseg, depth, surface normals, edges).

    Reads both public variants of the layout, detecting the variant of every file (the first
    candidate that exists is used; a dataset may mix them)::

        <data_root>/                MTI-Net/ATRC/MTLoRA archive | InvPT/TaskPrompter/MLoRE
          images/<id>.jpg|.png      .jpg                        | .png
          segmentation/<id>.png     uint8 0..40: 0 = void -> 255, k -> k - 1 (40 classes)
          depth/<id>.npy            float metres, 0 = invalid
          normals/<id>.npy|.png     .npy float (H, W, 3)        | .png, n = 2 v / 255 - 1
          edge/<id>.npy|.png        .npy {0, 1}                 | .png {0, 255}
          gt_sets/{train,val}.txt   ids, one a line (795 train / 654 val)

    Building the dataset checks the split file and that every file the requested tasks need
    exists, and fails naming the missing files (both candidates where a file has two). Each
    data info holds ``img_path``, ``img_id``, ``tasks``, ``label_format='nyud'``, an empty
    ``task_fields`` list (filled by ``LoadMultiTaskAnnotations``) and the label paths of the
    requested tasks: ``seg_map_path``, ``depth_path``, ``normals_path``, ``edge_path``.
    Depth NaN/inf values are masked as invalid (0) when loaded; see
    :func:`mmase.datasets.nyud_labels.decode_depth`. So that a corrupt depth file is visible,
    building the dataset (with ``depth`` among the tasks and ``check_depth=True``) reads every
    depth file once, counts its NaN/inf pixels and logs one warning listing the files that have
    any; the counts are kept in ``nonfinite_depth`` (path -> pixels).

    ``dataset_meta`` holds the 40 semseg ``classes``/``palette`` (mmseg convention) plus
    ``tasks``, ``task_classes`` and ``task_palettes`` (for ``semseg``).

    Args:
        ann_file (str): Split file, relative to ``data_root`` unless absolute, e.g.
            ``'gt_sets/train.txt'``.
        tasks (Sequence[str]): Any subset of ``semseg``, ``depth``, ``normals``, ``edge``.
            Defaults to all four.
        data_root (str): Root of the NYUDv2 layout. Required.
        check_depth (bool): Count NaN/inf pixels of every depth file at build (see above).
            Defaults to True.
        custom_tasks, label_fraction, label_seed: As for ``PascalContextMTDataset``
            (:mod:`mmase.datasets.task_options`).
        **kwargs: Other arguments of :class:`mmseg.datasets.BaseSegDataset` (``pipeline``,
            ``test_mode``, ``indices``, ``serialize_data``, ``lazy_init``, ``backend_args``,
            ...). File suffixes are detected, not given; custom ``classes`` and
            ``reduce_zero_label=True`` are not supported.
    """
    METAINFO = dict(
        classes=NYUD_CLASSES,
        palette=NYUD_PALETTE,
        task_classes=dict(semseg=NYUD_CLASSES),
        task_palettes=dict(semseg=NYUD_PALETTE))

    #: Folders of the layout (relative to ``data_root``) and their file suffixes, in the order
    #: they are looked up.
    IMG_DIR = 'images'
    IMG_SUFFIXES = ('.jpg', '.png')
    TASK_FILES = dict(
        semseg=('segmentation', ('.png', )),
        depth=('depth', ('.npy', )),
        normals=('normals', ('.npy', '.png')),
        edge=('edge', ('.npy', '.png')))

    #: Tasks whose labels the layout itself provides.
    BUILTIN_TASKS = NYUD_MT_TASKS

    def __init__(self,
                 ann_file: str,
                 tasks: Sequence[str] = NYUD_MT_TASKS,
                 data_root: Optional[str] = None,
                 check_depth: bool = True,
                 custom_tasks: Optional[Sequence[dict]] = None,
                 label_fraction: Optional[dict] = None,
                 label_seed: int = 0,
                 **kwargs) -> None:
        self.tasks = self._init_task_options(tasks, NYUD_MT_TASKS, custom_tasks,
                                             label_fraction, label_seed,
                                             kwargs.get('test_mode', False))
        self.check_depth = check_depth
        #: depth file -> number of NaN/inf pixels, for the files that have any (filled at build)
        self.nonfinite_depth: Dict[str, int] = {}
        if not data_root:
            raise ValueError('NYUDv2MTDataset: data_root (the NYUDv2 folder) is required')
        for key in ('img_suffix', 'seg_map_suffix'):
            if key in kwargs:
                raise ValueError(f'NYUDv2MTDataset: {key} is not an option; the suffix of '
                                 'every file is detected (.jpg/.png, .npy/.png)')
        if kwargs.get('reduce_zero_label', False):
            raise ValueError('NYUDv2MTDataset: reduce_zero_label=True is not supported (void '
                             '0 -> 255 and class k -> k - 1 are always applied)')
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=dict(img_path=self.IMG_DIR),
            **kwargs)
        if self.label_map is not None:
            raise ValueError('NYUDv2MTDataset: metainfo.classes must be the 40 NYUD classes; '
                             'class subsets are not supported')
        self._metainfo['tasks'] = self.tasks

    def _exists(self, path: str) -> bool:
        return fileio.exists(path, backend_args=self.backend_args)

    def _find(self, folder: str, img_id: str, suffixes: Sequence[str], missing: list) -> str:
        """The first of ``folder/<img_id><suffix>`` that exists; otherwise record all
        candidates in ``missing`` and return the first."""
        candidates = [osp.join(folder, img_id + s) for s in suffixes]
        for path in candidates:
            if self._exists(path):
                return path
        missing.append(' or '.join(candidates))
        return candidates[0]

    def load_data_list(self) -> List[dict]:
        """Read the split file and build one data info per id.

        Raises:
            ValueError: No split file given, or it lists no id.
            FileNotFoundError: The split file, or files of listed ids, are missing.
        """
        ids = read_split_ids(self.ann_file, 'NYUDv2MTDataset', 'gt_sets/train.txt', self.backend_args)

        missing = []
        data_list = []
        for img_id in ids:
            info = dict(
                img_path=self._find(self.data_prefix['img_path'], img_id, self.IMG_SUFFIXES,
                                    missing),
                img_id=img_id,
                tasks=self.tasks,
                label_format='nyud',
                task_fields=[])
            declared = self._declared_paths(info, img_id, self.data_root)
            missing.extend(p for p in declared if not self._exists(p))
            for task in (t for t in self.tasks if t in NYUD_MT_TASKS):
                folder, suffixes = self.TASK_FILES[task]
                info[NYUD_PATH_KEYS[task]] = self._find(
                    osp.join(self.data_root, folder), img_id, suffixes, missing)
            data_list.append(info)

        if missing:
            shown = '\n  '.join(missing[:10])
            more = f'\n  ... and {len(missing) - 10} more' if len(missing) > 10 else ''
            raise FileNotFoundError(
                f'split file {self.ann_file} names {len(ids)} ids, but {len(missing)} files '
                f'needed for tasks {self.tasks} are missing:\n  {shown}{more}')
        if 'depth' in self.tasks and self.check_depth:
            self._count_nonfinite_depth([info['depth_path'] for info in data_list])
        return self._apply_label_fraction(data_list)

    def _count_nonfinite_depth(self, paths: Sequence[str]) -> None:
        """Fill ``nonfinite_depth`` and log one warning naming the files with NaN/inf depth."""
        self.nonfinite_depth = {}
        for path in paths:
            depth = load_npy(fileio.get(path, backend_args=self.backend_args), path)
            if np.issubdtype(depth.dtype, np.floating):
                count = int(depth.size - np.count_nonzero(np.isfinite(depth)))
                if count:
                    self.nonfinite_depth[path] = count
        if self.nonfinite_depth:
            listed = [f'{p} ({n} px)' for p, n in self.nonfinite_depth.items()]
            more = f', ... and {len(listed) - 10} more' if len(listed) > 10 else ''
            print_log(f'NYUDv2MTDataset ({self.ann_file}): {len(listed)} of {len(paths)} depth '
                      f'files hold NaN/inf values ({sum(self.nonfinite_depth.values())} pixels), '
                      f'masked as invalid (0): {", ".join(listed[:10])}{more}',
                      logger='current', level=logging.WARNING)
