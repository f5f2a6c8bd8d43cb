"""What the files of the public PASCAL-Context multi-task archive ("PASCAL_MT") mean, and how
each of them turns into a label map.

The archive (used by ASTMT, MTI-Net, ATRC, InvPT and MTLoRA) holds, for every image id::

    JPEGImages/<id>.jpg
    semseg/VOC12/<id>.png | semseg/pascal-context/<id>.png   uint8 0..20 (+255 void)
    pascal-context/trainval/<id>.mat                         'LabelMap': Context ids 1..459
    human_parts/<id>.mat                                     'anno': PASCAL-Part objects
    sal_distill/<id>.png                                     uint8 grey, fg where v/255 > 0.5
    normals_distill/<id>.png                                 uint8 RGB, n = 2 v / 255 - 1

The decoders below follow the public loaders: edges are the thinned non-zero Laplacian of
``LabelMap``; human parts merge PASCAL-Part person part names into 6 classes; normals are
valid only on Context classes that NYUD-v2 also has; saliency is thresholded at 0.5.

All decoders take the raw bytes of a file and its path (the path only names the file in
errors), so they work with any mmengine file backend. A file that cannot be decoded, or
holds values outside its format, raises an error naming the file.
"""
import io
from typing import Dict, Tuple

import cv2
import numpy as np
from PIL import Image
from scipy import io as sio
from skimage.morphology import thin

#: The tasks the PASCAL_MT archive provides labels for.
PASCAL_MT_TASKS = ('semseg', 'human_parts', 'sal', 'normals', 'edge')

#: Semantic classes of the ``semseg`` PNGs: background + the 20 PASCAL VOC classes.
VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
               'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person',
               'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')

#: PASCAL-Context (459-label) id of each VOC class, indexed by VOC class (0: no Context id).
VOC_CONTEXT_IDS = (0, 2, 23, 25, 31, 34, 45, 59, 65, 72, 98, 397, 113, 207, 258, 284, 308,
                   347, 368, 416, 427)

#: Human-part classes (background + 6 merged PASCAL-Part person parts).
HUMAN_PART_CLASSES = ('background', 'head', 'torso', 'upper arm', 'lower arm', 'upper leg',
                      'lower leg')

#: VOC class id of ``person`` in PASCAL-Part ``anno`` objects.
PERSON_CLASS_ID = 15

#: PASCAL-Part person part name -> human-part class (index into ``HUMAN_PART_CLASSES``).
HUMAN_PART_NAME_TO_CLASS: Dict[str, int] = {
    **{name: 1 for name in ('hair', 'head', 'lear', 'rear', 'lebrow', 'rebrow', 'leye', 'reye',
                            'mouth', 'nose')},
    **{name: 2 for name in ('neck', 'torso')},
    **{name: 3 for name in ('luarm', 'ruarm')},
    **{name: 4 for name in ('llarm', 'rlarm', 'lhand', 'rhand')},
    **{name: 5 for name in ('luleg', 'ruleg')},
    **{name: 6 for name in ('llleg', 'rlleg', 'lfoot', 'rfoot')},
}

#: PASCAL-Context ids of the 170 classes NYUD-v2 also has: distilled normals are valid there.
NORMALS_VALID_CONTEXT_IDS: Tuple[int, ...] = tuple(int(v) for v in """
    3 4 6 9 10 11 13 15 17 18 22 23 29 30 33 34 36 37 38 39 41 43 46 49 50 51 53 55 56 59 61 62
    65 66 68 69 72 73 78 83 84 85 87 88 95 96 101 104 105 107 111 113 115 122 124 135 141 142
    143 146 150 154 157 158 159 165 172 174 181 183 184 191 193 195 197 199 202 213 215 216 219
    220 223 225 228 230 232 233 238 239 242 243 246 250 251 252 255 260 261 263 269 272 273 275
    281 283 284 285 286 287 288 290 291 292 293 295 304 307 309 310 314 315 319 323 329 330 331
    336 342 345 349 350 351 352 355 357 368 370 371 374 379 380 383 384 397 401 403 405 407 408
    411 412 413 414 417 419 421 423 427 429 430 432 440 441 442 443 444 446 454 457
    """.split())


def voc_colormap(num_classes: int) -> list:
    """The PASCAL VOC colour map: class ``c``'s RGB spreads the bits of ``c`` over the three
    channels from the most significant bit down.

    Args:
        num_classes (int): Number of colours.

    Returns:
        list[list[int]]: ``num_classes`` RGB triples in 0..255.
    """
    colours = []
    for c in range(num_classes):
        rgb = [0, 0, 0]
        value = c
        for bit in range(7, -1, -1):
            for ch in range(3):
                rgb[ch] |= ((value >> ch) & 1) << bit
            value >>= 3
        colours.append(rgb)
    return colours


VOC_PALETTE = voc_colormap(len(VOC_CLASSES))
HUMAN_PART_PALETTE = [[0, 0, 0], [220, 20, 60], [0, 128, 255], [255, 170, 0], [255, 255, 0],
                      [0, 200, 80], [128, 0, 255]]


def _open_png(data: bytes, path: str) -> Image.Image:
    """Decode a PNG fully (so that truncated files fail here), naming ``path`` on failure."""
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as err:  # PIL raises several types for broken files
        raise OSError(f'cannot decode image file {path}: {err}') from err
    return img


def _single_channel(img: Image.Image, path: str, what: str) -> np.ndarray:
    """(H, W) array of a one-channel PNG ('L', 'P' palette indices, 'I', 'I;16')."""
    arr = np.asarray(img)
    if arr.ndim != 2:
        raise ValueError(f'{path}: expected a one-channel {what} PNG, got mode {img.mode!r} '
                         f'with shape {arr.shape}')
    return arr


def decode_semseg(data: bytes, path: str) -> np.ndarray:
    """Semantic segmentation PNG -> (H, W) uint8 in 0..20, 255 = ignore (VOC void).

    Palette PNGs give their palette indices (as PIL reads them), which are the class ids.
    """
    arr = _single_channel(_open_png(data, path), path, 'semseg')
    bad = (arr > len(VOC_CLASSES) - 1) & (arr != 255)
    if bad.any():
        raise ValueError(f'{path}: semseg values must be 0..{len(VOC_CLASSES) - 1} or 255, '
                         f'found {sorted(np.unique(arr[bad]).tolist())[:10]}')
    return arr.astype(np.uint8)


def decode_sal(data: bytes, path: str) -> np.ndarray:
    """Distilled saliency PNG -> (H, W) uint8 {0, 1}: 1 where value / 255 > 0.5."""
    arr = _single_channel(_open_png(data, path), path, 'saliency')
    return (arr.astype(np.float32) / 255.0 > 0.5).astype(np.uint8)


def decode_normals(data: bytes, path: str) -> np.ndarray:
    """Distilled normals PNG -> (H, W, 3) float32 unit vectors (x, y, z = R, G, B).

    ``n = 2 v / 255 - 1`` per channel, renormalised to unit length (the 8-bit quantisation
    leaves norms within about 1 % of 1). Which pixels are valid is decided by the Context
    ``LabelMap``: see :func:`mask_normals`.
    """
    img = _open_png(data, path)
    if img.mode != 'RGB':
        raise ValueError(f'{path}: expected an 8-bit RGB normals PNG, got mode {img.mode!r}')
    rgb = np.asarray(img).astype(np.float32)  # PIL keeps R, G, B order
    normals = 2.0 * rgb / 255.0 - 1.0
    norm = np.linalg.norm(normals, axis=2, keepdims=True)
    return (normals / np.maximum(norm, 1e-6)).astype(np.float32)


def mask_normals(normals: np.ndarray, label_map: np.ndarray) -> np.ndarray:
    """Zero the normals (H, W, 3) where ``label_map`` (H, W) is not one of
    ``NORMALS_VALID_CONTEXT_IDS`` (Context classes NYUD-v2 lacks); returns a new array."""
    if normals.shape[:2] != label_map.shape:
        raise ValueError(f'normals map {normals.shape[:2]} and LabelMap {label_map.shape} '
                         'differ in size')
    valid = np.isin(label_map, NORMALS_VALID_CONTEXT_IDS)
    out = normals.copy()
    out[~valid] = 0.0
    return out


def _load_mat(data: bytes, path: str, key: str):
    try:
        mat = sio.loadmat(io.BytesIO(data))
    except Exception as err:  # scipy raises ValueError/TypeError/... on broken files
        raise OSError(f'cannot read MATLAB file {path}: {err}') from err
    if key not in mat:
        raise KeyError(f'{path}: MATLAB file has no variable {key!r} '
                       f'(found {sorted(k for k in mat if not k.startswith("__"))})')
    return mat[key]


def decode_label_map(data: bytes, path: str) -> np.ndarray:
    """PASCAL-Context ``<id>.mat`` -> its ``LabelMap``: (H, W) integer Context ids (uint16 in
    the archive; integral float arrays are accepted and cast to int64)."""
    label_map = _load_mat(data, path, 'LabelMap')
    if label_map.ndim != 2 or not (np.issubdtype(label_map.dtype, np.integer) or (
            np.issubdtype(label_map.dtype, np.floating)
            and np.array_equal(label_map, np.round(label_map)))):
        raise ValueError(f'{path}: LabelMap must be a 2-D array of integer class ids, got '
                         f'{label_map.dtype} {label_map.shape}')
    return label_map.astype(np.int64) if label_map.dtype.kind == 'f' else label_map


def edge_from_label_map(label_map: np.ndarray) -> np.ndarray:
    """Boundary map of a Context ``LabelMap``, as the public loaders compute it.

    ``L = cv2.Laplacian(LabelMap as float64, CV_64F)`` (3x3 aperture, reflected border), edges
    where ``|L| > 0``, then morphological thinning (``skimage.morphology.thin``).

    Args:
        label_map (np.ndarray): (H, W) integer class ids.

    Returns:
        np.ndarray: (H, W) uint8 in {0, 1}.
    """
    lap = cv2.Laplacian(label_map.astype(np.float64), cv2.CV_64F)
    return thin(np.abs(lap) > 0).astype(np.uint8)


def _anno_objects(anno, path: str):
    """The PASCAL-Part object list ``anno[0][0][1][0]`` (empty list when there is none)."""
    try:
        objects = anno[0][0][1]
    except (IndexError, TypeError, ValueError) as err:
        raise ValueError(f'{path}: "anno" is not a PASCAL-Part annotation struct '
                         f'(anno[0][0][1] is the object list): {err}') from err
    return [] if objects.size == 0 else list(objects[0])


def _object_class_and_parts(obj, k: int, path: str) -> Tuple[int, np.ndarray]:
    """Class id ``o[1][0][0]`` and part list ``o[3]`` of PASCAL-Part object ``k``."""
    try:
        return int(np.asarray(obj[1]).ravel()[0]), np.asarray(obj[3])
    except (IndexError, TypeError, ValueError) as err:
        raise ValueError(f'{path}: object {k} is not a PASCAL-Part object '
                         f'(class id o[1][0][0], parts o[3]): {err}') from err


def anno_has_person(data: bytes, path: str) -> bool:
    """Whether a PASCAL-Part ``anno`` .mat lists a person object (class 15), the test the
    public loaders (ASTMT, MTI-Net, InvPT) use to keep images for a human-parts-only run."""
    anno = _load_mat(data, path, 'anno')
    return any(_object_class_and_parts(obj, k, path)[0] == PERSON_CLASS_ID
               for k, obj in enumerate(_anno_objects(anno, path)))


def decode_human_parts(data: bytes, path: str, shape: Tuple[int, int]) -> np.ndarray:
    """PASCAL-Part ``anno`` .mat -> (H, W) uint8 human-part classes 0..6.

    Object ``o`` of ``anno[0][0][1][0]``: class id ``o[1][0][0]``, instance mask ``o[2]``, parts
    ``o[3][0]`` with name ``p[0][0]`` and mask ``p[1]``. Only person objects (class 15) with
    parts contribute; their part masks are painted with ``HUMAN_PART_NAME_TO_CLASS`` (later
    parts over earlier ones). Everything else, and every pixel of an image without person
    parts, is background (0).

    Args:
        data (bytes): .mat file contents.
        path (str): Its path, for errors.
        shape (tuple[int, int]): (H, W) of the image; every mask must have it.
    """
    anno = _load_mat(data, path, 'anno')
    target = np.zeros(shape, dtype=np.uint8)
    for k, obj in enumerate(_anno_objects(anno, path)):
        class_id, parts = _object_class_and_parts(obj, k, path)
        if class_id != PERSON_CLASS_ID or parts.size == 0:
            continue
        for j, part in enumerate(parts.ravel()):
            name = str(np.asarray(part[0]).ravel()[0])
            if name not in HUMAN_PART_NAME_TO_CLASS:
                raise ValueError(f'{path}: object {k} (person) has unknown part name {name!r}; '
                                 f'known: {sorted(HUMAN_PART_NAME_TO_CLASS)}')
            mask = np.asarray(part[1])
            if mask.shape != tuple(shape):
                raise ValueError(f'{path}: mask of part {j} ({name!r}) of object {k} is '
                                 f'{mask.shape[0]}x{mask.shape[1]} but the image is '
                                 f'{shape[0]}x{shape[1]}')
            target[mask.astype(bool)] = HUMAN_PART_NAME_TO_CLASS[name]
    return target

