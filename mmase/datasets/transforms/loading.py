"""Loading a multi-task sample: its image as stored (EXIF orientation ignored) and the ground
truth of every requested task."""
from typing import Iterator, Optional, Sequence, Tuple

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms import LoadImageFromFile as _MMCVLoadImageFromFile
from mmseg.registry import TRANSFORMS

from mmase.tasks import TASK_SPECS, check_tasks, get_task_spec
from mmase.utils.image_limits import ImageTooLargeError, check_image_bytes, max_image_pixels
from ..annotation_decoders import decode_annotation
from ..nyud_labels import (NYUD_MT_TASKS, NYUD_PATH_KEYS, decode_depth, decode_nyud_edge,
                           decode_nyud_normals, decode_nyud_semseg)
from ..pascal_mt_labels import (PASCAL_MT_TASKS, decode_human_parts, decode_label_map,
                                decode_normals, decode_sal, decode_semseg,
                                edge_from_label_map, mask_normals)

#: Label formats (``results['label_format']``) and the tasks each provides.
LABEL_FORMAT_TASKS = dict(pascal_mt=PASCAL_MT_TASKS, nyud=NYUD_MT_TASKS)
#: Format of samples without ``label_format`` (``PascalContextMTDataset`` sets none).
DEFAULT_LABEL_FORMAT = 'pascal_mt'
_ALL_TASKS = tuple(dict.fromkeys(t for tasks in LABEL_FORMAT_TASKS.values() for t in tasks))
_NYUD_DECODERS = dict(semseg=decode_nyud_semseg, depth=decode_depth,
                      normals=decode_nyud_normals, edge=decode_nyud_edge)


#: mmcv decode flags that apply a JPEG's EXIF orientation tag -> the same flag ignoring it.
_IGNORE_ORIENTATION = dict(color='color_ignore_orientation',
                           grayscale='grayscale_ignore_orientation')


@TRANSFORMS.register_module()
class LoadMultiTaskImageFromFile(_MMCVLoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` that reads the pixels as stored, ignoring EXIF orientation.

    Registered under its own name (the multi-task dataset configs' pipelines start with it);
    mmcv's ``LoadImageFromFile`` stays mmcv's, so importing mmase changes no mmseg pipeline.
    mmcv's ``color_type='color'`` (the default) and
    ``'grayscale'`` rotate / flip a JPEG by its EXIF orientation tag, while the label maps
    (PNG, ``.mat``, ``.npy``) are never rotated, so a tagged image would no longer line up with
    its labels; the public multi-task loaders (PIL's ``Image.open`` without
    ``exif_transpose``) ignore the tag too. Here those two colour types become
    ``'color_ignore_orientation'`` / ``'grayscale_ignore_orientation'``; other types are
    unchanged (``'unchanged'`` ignores orientation already).

    Args:
        ignore_orientation (bool): Ignore EXIF orientation (default True). False is mmcv's
            behaviour.
        max_pixels (int, optional): Largest image (width x height) decoded; a larger one is
            refused from its header (:mod:`mmase.utils.image_limits`). Default None:
            ``$MMASE_MAX_IMAGE_PIXELS``, else 2**28.
        *args, **kwargs: Those of ``mmcv.transforms.LoadImageFromFile`` (``to_float32``,
            ``color_type``, ``imdecode_backend``, ``ignore_empty``, ``backend_args``).
    """

    def __init__(self, *args, ignore_orientation: bool = True, max_pixels: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ignore_orientation = ignore_orientation
        if ignore_orientation:
            self.color_type = _IGNORE_ORIENTATION.get(self.color_type, self.color_type)
        self.max_pixels = max_pixels
        max_image_pixels(max_pixels)  # a bad value fails at build

    def transform(self, results: dict) -> Optional[dict]:
        """mmcv's loading, the image's header checked against the pixel limit
        (:mod:`mmase.utils.image_limits`: ``max_pixels``, else ``$MMASE_MAX_IMAGE_PIXELS``, else
        2**28) before it is decoded; read and decode errors name the file."""
        filename = results['img_path']
        try:
            if self.file_client_args is not None:
                img_bytes = fileio.FileClient.infer_client(self.file_client_args,
                                                           filename).get(filename)
            else:
                img_bytes = fileio.get(filename, backend_args=self.backend_args)
            check_image_bytes(img_bytes, str(filename), self.max_pixels)
            img = mmcv.imfrombytes(img_bytes, flag=self.color_type,
                                   backend=self.imdecode_backend)
        except ImageTooLargeError:
            raise  # never skipped by ignore_empty: a refused image is not a missing one
        except Exception as err:
            if self.ignore_empty:
                return None
            if str(filename) in str(err):
                raise
            raise ValueError(f'cannot read image {filename}: {type(err).__name__}: '
                             f'{err}') from err
        # mmcv's check and message (e.g. a truncated JPEG whose header is intact)
        assert img is not None, f'failed to load image: {filename}'
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


@TRANSFORMS.register_module()
class LoadMultiTaskAnnotations(BaseTransform):
    """Decode the label files of a multi-task sample into numpy maps.

    For each task it writes ``results[spec.gt_field]`` (see :mod:`mmase.tasks`) and appends that
    key to ``results['task_fields']``, the list the ``MultiTask*`` geometric transforms and
    ``PackMultiTaskInputs`` walk. The sample's ``label_format`` (set by the dataset; samples
    without it are ``'pascal_mt'``) says how its files are read.

    ``'pascal_mt'`` (``PascalContextMTDataset``):

    - ``semseg`` -> ``gt_sem_seg`` (H, W) uint8, 0..20, 255 = ignore, from ``seg_map_path``.
    - ``human_parts`` -> ``gt_human_parts`` (H, W) uint8, 0..6, from ``human_parts_path``
      (all background when the image has no person parts).
    - ``sal`` -> ``gt_sal`` (H, W) uint8 {0, 1}, from ``sal_path`` (value / 255 > 0.5).
    - ``normals`` -> ``gt_normals`` (H, W, 3) float32 unit vectors (x, y, z), all-zero where
      invalid, from ``normals_path`` and the Context ``label_map_path``.
    - ``edge`` -> ``gt_edge`` (H, W) uint8 {0, 1}: thinned Laplacian of the Context
      ``LabelMap`` (``label_map_path``).

    ``'nyud'`` (``NYUDv2MTDataset``; decoders in :mod:`mmase.datasets.nyud_labels`, the file
    suffix picks the archive variant):

    - ``semseg`` -> ``gt_sem_seg`` (H, W) uint8, 0..39, 255 = void, from ``seg_map_path``.
    - ``depth`` -> ``gt_depth`` (H, W) float32 metres, 0 = invalid (NaN/inf are masked as
      invalid), from ``depth_path`` (``.npy``).
    - ``normals`` -> ``gt_normals`` (H, W, 3) float32 unit vectors, all-zero = invalid, from
      ``normals_path`` (``.npy`` or ``.png``).
    - ``edge`` -> ``gt_edge`` (H, W) uint8 {0, 1}, from ``edge_path`` (``.npy`` or ``.png``).

    The image must be loaded first (``LoadMultiTaskImageFromFile``): every map must have the
    image's original size ``results['ori_shape']``, else an error names the file. Put this
    transform after a test-time ``MultiTaskResize`` to keep the ground truth at the original size.

    Any format: a declared task the format does not provide (``mmase.tasks``, with an
    ``annotation``) is read from ``<task>_path`` with its declared decoder. Tasks listed in
    ``results['unlabelled_tasks']`` (a dataset's ``label_fraction``) are not read: their map is
    the task's ignore value everywhere, so the sample adds no loss for them.

    Required keys: ``ori_shape``, ``tasks`` (unless given here), the label paths above,
    optionally ``label_format`` and ``unlabelled_tasks``. Added keys: ``gt_<field>`` per task,
    ``task_fields``.

    Args:
        tasks (Sequence[str], optional): Tasks to load; each sample's format must provide
            them. Defaults to None: the sample's ``results['tasks']`` (set by the dataset).
        backend_args (dict, optional): mmengine file backend arguments. Defaults to None.
    """

    def __init__(self, tasks: Optional[Sequence[str]] = None,
                 backend_args: Optional[dict] = None) -> None:
        self.tasks = None if tasks is None else check_tasks(
            tasks, 'LoadMultiTaskAnnotations.tasks',
            _ALL_TASKS + tuple(t for t, s in TASK_SPECS.items() if s.annotation is not None))
        self.backend_args = backend_args.copy() if backend_args else None

    def _read(self, results: dict, key: str) -> tuple:
        if key not in results:
            raise KeyError(f'LoadMultiTaskAnnotations: sample {results.get("img_path")} has no '
                           f'{key!r} (does the dataset load this task?)')
        path = results[key]
        try:
            data = fileio.get(path, backend_args=self.backend_args)
        except FileNotFoundError as err:
            raise FileNotFoundError(f'label file {path} not found') from err
        return data, path

    @staticmethod
    def _check_size(arr: np.ndarray, path: str, results: dict) -> None:
        shape = tuple(results['ori_shape'][:2])
        if arr.shape[:2] != shape:
            raise ValueError(f'{path}: label map is {arr.shape[0]}x{arr.shape[1]} but the '
                             f'image {results.get("img_path")} is {shape[0]}x{shape[1]}')

    def _pascal_mt_maps(self, results: dict, tasks: Sequence[str],
                        shape: Tuple[int, int]) -> Iterator[Tuple[str, np.ndarray, str]]:
        """Yield ``(task, map, path)`` for a PASCAL_MT sample."""
        label_map = None
        if 'edge' in tasks or 'normals' in tasks:
            data, path = self._read(results, 'label_map_path')
            label_map = decode_label_map(data, path)
            self._check_size(label_map, path, results)

        for task in tasks:
            if task == 'semseg':
                data, path = self._read(results, 'seg_map_path')
                gt = decode_semseg(data, path)
            elif task == 'human_parts':
                data, path = self._read(results, 'human_parts_path')
                gt = decode_human_parts(data, path, shape)
            elif task == 'sal':
                data, path = self._read(results, 'sal_path')
                gt = decode_sal(data, path)
            elif task == 'normals':
                data, path = self._read(results, 'normals_path')
                gt = decode_normals(data, path)
                self._check_size(gt, path, results)
                gt = mask_normals(gt, label_map)
            else:  # edge
                gt = edge_from_label_map(label_map)
                path = results['label_map_path']
            yield task, gt, path

    def _nyud_maps(self, results: dict,
                   tasks: Sequence[str]) -> Iterator[Tuple[str, np.ndarray, str]]:
        """Yield ``(task, map, path)`` for an NYUD-v2 sample."""
        for task in tasks:
            data, path = self._read(results, NYUD_PATH_KEYS[task])
            yield task, _NYUD_DECODERS[task](data, path), path

    def _declared_maps(self, results: dict,
                       tasks: Sequence[str]) -> Iterator[Tuple[str, np.ndarray, str]]:
        """Yield ``(task, map, path)`` for tasks read through their declared ``annotation``."""
        for task in tasks:
            spec = get_task_spec(task)
            data, path = self._read(results, f'{task}_path')
            yield task, decode_annotation(data, path, spec), path

    @staticmethod
    def _unlabelled_map(task: str, shape: Tuple[int, int]) -> np.ndarray:
        """A map of ``task`` at ``shape`` with every pixel unlabelled (its ignore value)."""
        spec = get_task_spec(task)
        full = shape if spec.channels == 1 else (*shape, spec.channels)
        if spec.is_float:
            return np.full(full, spec.ignore_value, np.float32)
        return np.full(full, spec.ignore_value, np.uint8 if 0 <= spec.ignore_value < 256
                       else np.int64)

    def transform(self, results: dict) -> dict:
        """Load every requested task's map; see the class docstring."""
        if 'ori_shape' not in results:
            raise KeyError('LoadMultiTaskAnnotations needs the image loaded first '
                           '(put LoadMultiTaskImageFromFile before it)')
        label_format = results.get('label_format', DEFAULT_LABEL_FORMAT)
        if label_format not in LABEL_FORMAT_TASKS:
            raise ValueError(f'LoadMultiTaskAnnotations: sample {results.get("img_path")} has '
                             f'label_format={label_format!r}; known: '
                             f'{sorted(LABEL_FORMAT_TASKS)}')
        builtin = LABEL_FORMAT_TASKS[label_format]
        available = builtin + tuple(t for t, spec in TASK_SPECS.items()
                                    if t not in builtin and spec.annotation is not None)
        if self.tasks is not None:
            tasks = check_tasks(self.tasks, 'LoadMultiTaskAnnotations.tasks', available)
        else:
            if 'tasks' not in results:
                raise KeyError('LoadMultiTaskAnnotations: no `tasks` in the sample; set '
                               'tasks=... here or use a multi-task dataset (to predict images '
                               'without labels use mmase.apis.inference_model)')
            tasks = check_tasks(results['tasks'], 'results.tasks', available)
        shape = tuple(results['ori_shape'][:2])
        fields = results.setdefault('task_fields', [])

        unlabelled = set(results.get('unlabelled_tasks', ()))
        unknown = sorted(unlabelled - set(tasks))
        if unknown:
            raise ValueError(f'LoadMultiTaskAnnotations: sample {results.get("img_path")} marks '
                             f'tasks {unknown} unlabelled, which it does not load')
        read = [t for t in tasks if t not in unlabelled]
        own = [t for t in read if t in builtin]
        if label_format == 'nyud':
            maps = list(self._nyud_maps(results, own))
        else:
            maps = list(self._pascal_mt_maps(results, own, shape))
        maps += list(self._declared_maps(results, [t for t in read if t not in builtin]))
        maps += [(t, self._unlabelled_map(t, shape), '<unlabelled>') for t in tasks
                 if t in unlabelled]
        order = {t: i for i, t in enumerate(tasks)}
        for task, gt, path in sorted(maps, key=lambda m: order[m[0]]):
            self._check_size(gt, path, results)
            field = get_task_spec(task).gt_field
            results[field] = gt
            if field not in fields:
                fields.append(field)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(tasks={self.tasks}, '
                f'backend_args={self.backend_args})')

