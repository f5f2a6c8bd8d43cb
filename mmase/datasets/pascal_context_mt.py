"""PASCAL-Context multi-task dataset (the public "PASCAL_MT" archive)."""
import os.path as osp
from typing import List, Optional, Sequence

import mmengine.fileio as fileio
from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .pascal_mt_labels import (HUMAN_PART_CLASSES, HUMAN_PART_PALETTE, PASCAL_MT_TASKS,
                               VOC_CLASSES, VOC_PALETTE, anno_has_person)
from .split_file import read_split_ids
from .task_options import TaskOptionsMixin


@DATASETS.register_module()
class PascalContextMTDataset(TaskOptionsMixin, BaseSegDataset):
    """PASCAL-Context for multi-task dense prediction (semseg, human parts, saliency,
    surface normals, edges), read from the public PASCAL_MT layout::

        <data_root>/
          JPEGImages/<id>.jpg
          ImageSets/Context/{train,val}.txt          ids, one a line
          semseg/VOC12/<id>.png                      looked up first,
          semseg/pascal-context/<id>.png             then here
          pascal-context/trainval/<id>.mat           'LabelMap' (edge, normals mask)
          human_parts/<id>.mat                       'anno' (PASCAL-Part)
          sal_distill/<id>.png
          normals_distill/<id>.png

    Building the dataset checks the split file and that every file the requested tasks need
    exists, and fails naming the missing files. Each data info holds ``img_path``, ``img_id``,
    ``tasks``, an empty ``task_fields`` list (filled by ``LoadMultiTaskAnnotations``) and the
    label paths of the requested tasks: ``seg_map_path`` (semseg), ``human_parts_path``,
    ``sal_path``, ``normals_path``, ``label_map_path`` (edge and normals).

    ``dataset_meta`` holds the semseg ``classes``/``palette`` (mmseg convention) plus ``tasks``,
    ``task_classes`` and ``task_palettes`` (for ``semseg`` and ``human_parts``).

    Args:
        ann_file (str): Split file, relative to ``data_root`` unless absolute, e.g.
            ``'ImageSets/Context/train.txt'``.
        tasks (Sequence[str]): Any subset of ``semseg``, ``human_parts``, ``sal``,
            ``normals``, ``edge``. Defaults to all five.
        data_root (str): Root of the PASCAL_MT layout. Required.
        img_suffix (str): Image file suffix. Defaults to '.jpg'.
        filter_cfg (dict, optional): ``dict(with_persons=True)`` keeps only the images whose
            PASCAL-Part annotation lists a person, as the public loaders do when human parts
            is the only task (its single-task baseline); needs ``'human_parts'`` in ``tasks``.
            Reads every ``human_parts/<id>.mat`` once at build. Default: None (all images).
        custom_tasks (list[dict], optional): Task declarations (``mmase.tasks``); a declared
            task with an ``annotation`` may be in ``tasks`` (its files are
            ``<data_root>/<annotation.dir>/<id><suffix>``, key ``<task>_path``). Default: None.
        label_fraction (dict, optional): Task -> fraction (float in (0, 1]) or count (int) of
            the split's images that keep the task's labels; see
            :mod:`mmase.datasets.task_options`. Training sets only. Default: None (all).
        label_seed (int): Seed of the images ``label_fraction`` keeps. Default: 0.
        **kwargs: Other arguments of :class:`mmseg.datasets.BaseSegDataset` (``pipeline``,
            ``test_mode``, ``indices``, ``serialize_data``, ``lazy_init``, ``backend_args``,
            ...). Custom ``classes`` and ``reduce_zero_label=True`` are not supported.
    """
    METAINFO = dict(
        classes=VOC_CLASSES,
        palette=VOC_PALETTE,
        task_classes=dict(semseg=VOC_CLASSES, human_parts=HUMAN_PART_CLASSES),
        task_palettes=dict(semseg=VOC_PALETTE, human_parts=HUMAN_PART_PALETTE))

    #: Tasks whose labels the layout itself provides.
    BUILTIN_TASKS = PASCAL_MT_TASKS
    #: Folders of the layout, relative to ``data_root``.
    IMG_DIR = 'JPEGImages'
    SEMSEG_DIRS = ('semseg/VOC12', 'semseg/pascal-context')
    LABEL_MAP_DIR = 'pascal-context/trainval'
    HUMAN_PARTS_DIR = 'human_parts'
    SAL_DIR = 'sal_distill'
    NORMALS_DIR = 'normals_distill'

    def __init__(self,
                 ann_file: str,
                 tasks: Sequence[str] = PASCAL_MT_TASKS,
                 data_root: Optional[str] = None,
                 img_suffix: str = '.jpg',
                 custom_tasks: Optional[Sequence[dict]] = None,
                 label_fraction: Optional[dict] = None,
                 label_seed: int = 0,
                 **kwargs) -> None:
        self.tasks = self._init_task_options(tasks, PASCAL_MT_TASKS, custom_tasks,
                                             label_fraction, label_seed,
                                             kwargs.get('test_mode', False))
        self._check_filter_cfg(kwargs.get('filter_cfg'))
        if not data_root:
            raise ValueError('PascalContextMTDataset: data_root (the PASCAL_MT folder) is '
                             'required')
        if kwargs.get('reduce_zero_label', False):
            raise ValueError('PascalContextMTDataset: reduce_zero_label=True is not supported '
                             '(class 0 is background)')
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            img_suffix=img_suffix,
            seg_map_suffix='.png',
            data_prefix=dict(img_path=self.IMG_DIR),
            **kwargs)
        if self.label_map is not None:
            raise ValueError('PascalContextMTDataset: metainfo.classes must be the 21 '
                             'PASCAL-Context classes; class subsets are not supported')
        self._metainfo['tasks'] = self.tasks

    def _check_filter_cfg(self, filter_cfg: Optional[dict]) -> None:
        if filter_cfg is None:
            return
        unknown = sorted(set(filter_cfg) - {'with_persons'})
        if unknown:
            raise ValueError(f'PascalContextMTDataset: filter_cfg has unknown keys {unknown}; '
                             "the only key is 'with_persons'")
        with_persons = filter_cfg.get('with_persons', False)
        if not isinstance(with_persons, bool):
            raise TypeError('PascalContextMTDataset: filter_cfg.with_persons must be True or '
                            f'False, got {with_persons!r}')
        if with_persons and 'human_parts' not in self.tasks:
            raise ValueError("PascalContextMTDataset: filter_cfg.with_persons=True needs "
                             f"'human_parts' in tasks, got tasks={self.tasks}")

    def filter_data(self) -> List[dict]:
        """Apply ``filter_cfg`` (see the class docstring); logs how many images remain.

        Raises:
            ValueError: No image of the split lists a person.
        """
        if not (self.filter_cfg or {}).get('with_persons', False):
            return self.data_list
        kept = [info for info in self.data_list if anno_has_person(
            fileio.get(info['human_parts_path'], backend_args=self.backend_args),
            info['human_parts_path'])]
        if not kept:
            raise ValueError(f'PascalContextMTDataset: filter_cfg.with_persons=True, but no '
                             f'image of {self.ann_file} has a person in human_parts/*.mat')
        print_log(f'PascalContextMTDataset: {len(kept)} of {len(self.data_list)} images of '
                  f'{self.ann_file} have a person (filter_cfg.with_persons)', logger='current')
        return kept

    def _root(self, *parts: str) -> str:
        return osp.join(self.data_root, *parts)

    def _exists(self, path: str) -> bool:
        return fileio.exists(path, backend_args=self.backend_args)

    def load_data_list(self) -> List[dict]:
        """Read the split file and build one data info per id.

        Raises:
            ValueError: No split file given, or it lists no id.
            FileNotFoundError: The split file, or files of listed ids, are missing.
        """
        ids = read_split_ids(self.ann_file, 'PascalContextMTDataset',
                             'ImageSets/Context/train.txt', self.backend_args)

        img_dir = self.data_prefix['img_path']
        missing = []
        data_list = []
        for img_id in ids:
            info = dict(
                img_path=osp.join(img_dir, img_id + self.img_suffix),
                img_id=img_id,
                tasks=self.tasks,
                task_fields=[])
            wanted = [info['img_path']]
            if 'semseg' in self.tasks:
                candidates = [self._root(d, img_id + self.seg_map_suffix)
                              for d in self.SEMSEG_DIRS]
                found = [p for p in candidates if self._exists(p)]
                if found:
                    info['seg_map_path'] = found[0]
                else:
                    missing.append(' or '.join(candidates))
            if 'human_parts' in self.tasks:
                info['human_parts_path'] = self._root(self.HUMAN_PARTS_DIR, img_id + '.mat')
                wanted.append(info['human_parts_path'])
            if 'sal' in self.tasks:
                info['sal_path'] = self._root(self.SAL_DIR, img_id + '.png')
                wanted.append(info['sal_path'])
            if 'normals' in self.tasks:
                info['normals_path'] = self._root(self.NORMALS_DIR, img_id + '.png')
                wanted.append(info['normals_path'])
            if 'normals' in self.tasks or 'edge' in self.tasks:
                info['label_map_path'] = self._root(self.LABEL_MAP_DIR, img_id + '.mat')
                wanted.append(info['label_map_path'])
            wanted.extend(self._declared_paths(info, img_id, self.data_root))
            missing.extend(p for p in wanted if not self._exists(p))
            data_list.append(info)

        if missing:
            shown = '\n  '.join(missing[:10])
            more = f'\n  ... and {len(missing) - 10} more' if len(missing) > 10 else ''
            raise FileNotFoundError(
                f'split file {self.ann_file} names {len(ids)} ids, but {len(missing)} files '
                f'needed for tasks {self.tasks} are missing:\n  {shown}{more}')
        return self._apply_label_fraction(data_list)
