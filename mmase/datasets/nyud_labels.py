"""What the files of the public NYUD-v2 multi-task archives mean, and how each of them turns
into a label map.

Two archives of the same data are in use (795 train / 654 val images of 425x560 px); a
dataset may mix them per file::

    NYUDv2/                      MTI-Net / ATRC / MTLoRA          InvPT / TaskPrompter / MLoRE
      images/<id>.*              .jpg                             .png
      segmentation/<id>.png      uint8 0..40: 0 = void, k = class k - 1 (both)
      depth/<id>.npy             float metres, 0 = invalid (both)
      normals/<id>.*             .npy float (H, W, 3)             .png RGB, n = 2 v / 255 - 1
      edge/<id>.*                .npy {0, 1}                      .png {0, 255}
      gt_sets/{train,val}.txt

All decoders take the raw bytes of a file and its path (the path names the file in errors and
its suffix picks the variant), so they work with any mmengine file backend. A file that cannot
be decoded, or holds values outside its format, raises an error naming the file.
"""
import io
import os.path as osp
from typing import Dict

import numpy as np

from .pascal_mt_labels import _open_png, _single_channel, voc_colormap

#: The tasks the NYUD-v2 archives provide labels for.
NYUD_MT_TASKS = ('semseg', 'depth', 'normals', 'edge')

#: The standard NYUv2 40-class list (Gupta et al.); class ``k`` is stored as ``k + 1``.
NYUD_CLASSES = ('wall', 'floor', 'cabinet', 'bed', 'chair', 'sofa', 'table', 'door', 'window',
                'bookshelf', 'picture', 'counter', 'blinds', 'desk', 'shelves', 'curtain',
                'dresser', 'pillow', 'mirror', 'floor mat', 'clothes', 'ceiling', 'books',
                'refrigerator', 'television', 'paper', 'towel', 'shower curtain', 'box',
                'whiteboard', 'person', 'night stand', 'toilet', 'sink', 'lamp', 'bathtub',
                'bag', 'otherstructure', 'otherfurniture', 'otherprop')

#: One RGB colour per class: the VOC bit-spreading colour map of the stored ids 1..40 (so no
#: class is black, the colour of ignored pixels in mmseg's visualiser).
NYUD_PALETTE = voc_colormap(len(NYUD_CLASSES) + 1)[1:]

#: Data-info key of each task's label file (written by ``NYUDv2MTDataset``, read by
#: ``LoadMultiTaskAnnotations``).
NYUD_PATH_KEYS: Dict[str, str] = dict(semseg='seg_map_path', depth='depth_path',
                                      normals='normals_path', edge='edge_path')

#: Ignore value of the decoded semseg map (void pixels).
_IGNORE = 255
#: PNG normals whose decoded vector is shorter than this are invalid (see
#: :func:`decode_nyud_normals`).
_MIN_PNG_NORMAL_NORM = 0.5


def load_npy(data: bytes, path: str) -> np.ndarray:
    """Decode ``.npy`` bytes (no pickled objects), naming ``path`` on failure."""
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as err:  # numpy raises ValueError/EOFError/... on broken files
        raise OSError(f'cannot read numpy file {path}: {err}') from err
    if not isinstance(arr, np.ndarray):
        raise OSError(f'cannot read numpy file {path}: it holds {type(arr).__name__}, not one '
                      'array')
    return arr


def _suffix(path: str, allowed) -> str:
    suffix = osp.splitext(path)[1].lower()
    if suffix not in allowed:
        raise ValueError(f'{path}: unsupported file type {suffix!r}; expected one of '
                         f'{tuple(allowed)}')
    return suffix


def _squeeze_hw1(arr: np.ndarray, path: str, what: str) -> np.ndarray:
    """(H, W) or (H, W, 1) -> (H, W); anything else is an error naming ``path``."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise ValueError(f'{path}: {what} must be (H, W) or (H, W, 1), got shape {arr.shape}')
    return arr


def decode_nyud_semseg(data: bytes, path: str) -> np.ndarray:
    """Segmentation PNG (uint8 0..40) -> (H, W) uint8: void 0 -> 255, class k -> k - 1.

    Palette PNGs give their palette indices (as PIL reads them), which are the stored ids.
    """
    arr = _single_channel(_open_png(data, path), path, 'segmentation')
    bad = arr > len(NYUD_CLASSES)
    if bad.any():
        raise ValueError(f'{path}: NYUD segmentation values must be 0..{len(NYUD_CLASSES)}, '
                         f'found {sorted(np.unique(arr[bad]).tolist())[:10]}')
    arr = arr.astype(np.int64)
    return np.where(arr == 0, _IGNORE, arr - 1).astype(np.uint8)


def decode_depth(data: bytes, path: str) -> np.ndarray:
    """Depth ``.npy`` -> (H, W) float32 metres, 0 = invalid.

    The array must be a float array (any precision) of shape (H, W) or (H, W, 1). Zeros are
    invalid pixels (no measurement); NaN and +-inf are masked as invalid too (set to 0), so a
    map that marks holes with NaN works unchanged. Negative depths are an error.

    Raises:
        OSError: The file is not a readable ``.npy``.
        ValueError: Wrong dtype (not float), wrong shape, or negative values; the message
            names the file.
    """
    arr = load_npy(data, path)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f'{path}: depth must be a float array of metres, got dtype '
                         f'{arr.dtype}')
    depth = _squeeze_hw1(arr, path, 'depth').astype(np.float32)
    finite = np.isfinite(depth)
    if not finite.all():
        depth = np.where(finite, depth, np.float32(0))
    if (depth < 0).any():
        raise ValueError(f'{path}: depth must be >= 0 metres (0 = invalid), found minimum '
                         f'{float(depth.min())}')
    return depth


def decode_nyud_normals(data: bytes, path: str) -> np.ndarray:
    """Normals ``.npy`` or ``.png`` -> (H, W, 3) float32 unit vectors, all-zero = invalid.

    - ``.npy``: float array (H, W, 3). All-zero vectors (and vectors with a NaN/inf
      component) are invalid and come out as zero; the others are scaled to unit length.
    - ``.png``: 8-bit RGB, ``n = 2 v / 255 - 1`` per channel in R, G, B order, scaled to unit
      length. A PNG cannot store the zero vector: pixels whose decoded vector is shorter than
      0.5 (mid-grey, e.g. (128, 128, 128); real normals decode to length 1 +- 0.01) are
      invalid and come out as zero.

    Raises:
        OSError: The file cannot be decoded.
        ValueError: Wrong dtype, shape or PNG mode; the message names the file.
    """
    suffix = _suffix(path, ('.npy', '.png'))
    if suffix == '.npy':
        arr = load_npy(data, path)
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f'{path}: normals must be a float array, got dtype {arr.dtype}')
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f'{path}: normals must be (H, W, 3), got shape {arr.shape}')
        normals = arr.astype(np.float32)
        norm = np.linalg.norm(normals, axis=2, keepdims=True)
        valid = np.isfinite(norm) & (norm > 1e-6)
    else:
        img = _open_png(data, path)
        if img.mode != 'RGB':
            raise ValueError(f'{path}: expected an 8-bit RGB normals PNG, got mode '
                             f'{img.mode!r}')
        normals = 2.0 * np.asarray(img).astype(np.float32) / 255.0 - 1.0  # PIL keeps R, G, B
        norm = np.linalg.norm(normals, axis=2, keepdims=True)
        valid = norm >= _MIN_PNG_NORMAL_NORM
    out = np.where(valid, normals / np.where(valid, norm, 1.0), 0.0)
    return out.astype(np.float32)


def decode_nyud_edge(data: bytes, path: str) -> np.ndarray:
    """Edge ``.npy`` ({0, 1}, any numeric or bool dtype) or ``.png`` ({0, 255}, divided by
    255) of shape (H, W) or (H, W, 1) -> (H, W) uint8 {0, 1}.

    Raises:
        OSError: The file cannot be decoded.
        ValueError: Other values, wrong shape or dtype; the message names the file.
    """
    suffix = _suffix(path, ('.npy', '.png'))
    if suffix == '.npy':
        arr = load_npy(data, path)
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise ValueError(f'{path}: edge map must be numeric, got dtype {arr.dtype}')
        arr = _squeeze_hw1(arr, path, 'edge map')
        values = arr
    else:
        arr = _single_channel(_open_png(data, path), path, 'edge')
        values = arr.astype(np.float32) / 255.0
    bad = (values != 0) & (values != 1)
    if bad.any():
        found = sorted(np.unique(arr[bad]).tolist())[:10]
        raise ValueError(f'{path}: edge map must hold {{0, 1}} ({{0, 255}} in a PNG), found '
                         f'{found}')
    return (values == 1).astype(np.uint8)
