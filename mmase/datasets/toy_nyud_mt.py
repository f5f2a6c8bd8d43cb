"""A tiny synthetic dataset in the exact NYUD-v2 multi-task layout, for tests and smoke runs.

:func:`make_toy_nyud_mt` ray-casts rooms seen by a pinhole camera: floor, ceiling, back and
side walls, with flat items on them (picture, window, whiteboard, door, floor mat) and 1-3
boxes standing on the floor (cabinet, bed, table, dresser, night stand, box). Every label
comes from the same geometry, so they agree with each other:

- ``depth``: the camera-z distance of the first surface hit, in metres (0 on a few small
  "sensor holes");
- ``normals``: the normal of that surface in camera coordinates, x right, y up, z towards
  the camera (a wall facing the camera is (0, 0, 1)); zero in the sensor holes;
- ``semseg``: its NYUD class (stored 1..40), with a few small void (0) spots;
- ``edge``: the boundaries of the class map (thinned Laplacian, as for PASCAL-Context);
- the image: class colours and world-anchored textures, Lambert-shaded with the normals,
  darker with distance, plus a little noise.

Two archive variants: ``'mtinet'`` (images ``.jpg``, normals/edge ``.npy``: the default) and
``'invpt'`` (images, normals and edges ``.png``). Everything is drawn from
``numpy.random.default_rng([seed, index])``: the same arguments give byte-identical files.
"""
import io
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np
from PIL import Image

from .nyud_labels import NYUD_CLASSES
from .pascal_mt_labels import edge_from_label_map

#: Toy archive variants: image suffix, normals/edge suffix.
TOY_VARIANTS = dict(mtinet=('.jpg', '.npy'), invpt=('.png', '.png'))


def _stored_id(name: str) -> int:
    """Stored (1-based) id of an NYUD class name."""
    return NYUD_CLASSES.index(name) + 1


WALL, FLOOR, CEILING = _stored_id('wall'), _stored_id('floor'), _stored_id('ceiling')
#: Boxes standing on the floor: class -> ((w min, max), (h min, max), (d min, max)) metres.
BOX_SIZES = {
    _stored_id('cabinet'): ((0.6, 1.0), (0.8, 1.8), (0.4, 0.6)),
    _stored_id('bed'): ((1.2, 1.8), (0.4, 0.6), (1.5, 2.0)),
    _stored_id('table'): ((0.8, 1.4), (0.7, 0.8), (0.6, 1.0)),
    _stored_id('dresser'): ((0.8, 1.2), (0.8, 1.1), (0.4, 0.5)),
    _stored_id('night stand'): ((0.4, 0.5), (0.5, 0.6), (0.4, 0.5)),
    _stored_id('box'): ((0.3, 0.6), (0.3, 0.6), (0.3, 0.6)),
}
BACK_WALL_ITEMS = (_stored_id('picture'), _stored_id('window'), _stored_id('whiteboard'))
DOOR, FLOOR_MAT = _stored_id('door'), _stored_id('floor mat')

#: BGR base colour of each class drawn.
_COLOURS = {
    WALL: (170, 185, 195), FLOOR: (60, 95, 140), CEILING: (225, 230, 232),
    _stored_id('cabinet'): (40, 70, 120), _stored_id('bed'): (150, 110, 70),
    _stored_id('table'): (30, 50, 90), _stored_id('dresser'): (90, 60, 150),
    _stored_id('night stand'): (40, 140, 160), _stored_id('box'): (70, 150, 200),
    _stored_id('picture'): (60, 60, 200), _stored_id('window'): (240, 220, 170),
    _stored_id('whiteboard'): (245, 245, 245), DOOR: (30, 80, 110),
    FLOOR_MAT: (50, 50, 170),
}
_LIGHT = np.array([0.3, -0.8, -0.5])  # world direction towards the light (y down)

_README = """Toy NYUD-v2 multi-task dataset: generated, synthetic, not real NYUD data.

Written by mmase.datasets.toy_nyud_mt.make_toy_nyud_mt; from the repository root:
    python tools/misc/make_toy_nyud_mt.py --out <this folder> --seed {seed} \\
        --num-train {num_train} --num-val {num_val} --min-size {min_size} \\
        --max-size {max_size} --variant {variant}
The same arguments give byte-identical files.

Layout = the public NYUDv2 multi-task archive, in the
{variant_text}:
images/<id>{img_suffix}, segmentation/<id>.png (uint8 0..40, 0 = void), depth/<id>.npy
(float32 metres, 0 = invalid), normals/<id>{map_suffix}, edge/<id>{map_suffix},
gt_sets/{{train,val}}.txt.

Scenes: ray-cast rooms (floor, ceiling, walls with picture / window / whiteboard / door /
floor mat) with 1-3 boxes (cabinet, bed, table, dresser, night stand, box) seen by a pinhole
camera; depth, normals (camera frame: x right, y up, z towards the camera), classes and edges
(class-map boundaries) come from the same geometry; a few sensor holes (depth 0, normals
zero) and void spots. {num_train} train + {num_val} val images, sides {min_size}-{max_size} px.
"""
_VARIANT_TEXT = dict(
    mtinet='MTI-Net/ATRC/MTLoRA variant (.jpg images, .npy normals and edges)',
    invpt='InvPT/TaskPrompter/MLoRE variant (.png images, normals and edges)')


def _rotation(pitch: float, yaw: float) -> np.ndarray:
    """Camera-to-world rotation: yaw about y, then pitch about x (radians; y down)."""
    cp, sp, cy, sy = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    return ry @ rx


def _safe(d: np.ndarray) -> np.ndarray:
    """Ray direction components with exact zeros nudged (no division by zero)."""
    return np.where(np.abs(d) < 1e-12, 1e-12, d)


class _Hits:
    """Nearest surface along each ray: distance ``t``, world normal and class."""

    def __init__(self, shape: Tuple[int, int]) -> None:
        self.t = np.full(shape, np.inf)
        self.normal = np.zeros(shape + (3, ))
        self.label = np.zeros(shape, np.int64)

    def add(self, t: np.ndarray, normal: np.ndarray, label) -> None:
        nearer = (t > 1e-6) & (t < self.t)
        self.t[nearer] = t[nearer]
        self.normal[nearer] = np.broadcast_to(normal, t.shape + (3, ))[nearer]
        self.label[nearer] = np.broadcast_to(label, t.shape)[nearer]


def _box_hit(d: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Entry distance (inf on a miss) and entry-face world normal of rays from the origin
    along ``d`` (H, W, 3) into the axis-aligned box [lo, hi]."""
    t1, t2 = lo / d, hi / d
    t_near_axes = np.minimum(t1, t2)
    t_near = t_near_axes.max(axis=2)
    t_far = np.maximum(t1, t2).min(axis=2)
    hit = (t_near <= t_far) & (t_near > 0)
    axis = t_near_axes.argmax(axis=2)
    normal = np.zeros(d.shape)
    rows, cols = np.indices(axis.shape)
    normal[rows, cols, axis] = -np.sign(d[rows, cols, axis])
    return np.where(hit, t_near, np.inf), normal


def _texture(label: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(H, W) brightness factor of world-anchored class textures at points ``p`` (H, W, 3)."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    tex = np.ones(label.shape)
    tex = np.where(label == FLOOR, 0.85 + 0.15 * (np.sin(x * 12.0) > 0), tex)
    tex = np.where(label == FLOOR_MAT, 0.75 + 0.25 * ((np.floor(x * 8) + np.floor(z * 8)) % 2),
                   tex)
    tex = np.where(label == _stored_id('bed'), 0.85 + 0.15 * (np.sin(z * 15.0) > 0.3), tex)
    tex = np.where(label == _stored_id('cabinet'), 0.8 + 0.2 * (np.sin(y * 10.0) > -0.6), tex)
    tex = np.where(label == DOOR, 0.85 + 0.15 * (np.abs(np.sin(y * 4.0)) > 0.2), tex)
    tex = np.where(label == _stored_id('picture'), 0.7 + 0.3 * np.cos(x * 9 + y * 7) ** 2, tex)
    tex = np.where(label == _stored_id('box'), 0.8 + 0.2 * (np.sin((x + z) * 20) > 0), tex)
    return tex


def _discs(rng: np.random.Generator, shape: Tuple[int, int], count: int) -> np.ndarray:
    """Boolean mask of ``count`` small random discs (radius 1-2 px)."""
    mask = np.zeros(shape, np.uint8)
    for _ in range(count):
        centre = (int(rng.integers(0, shape[1])), int(rng.integers(0, shape[0])))
        cv2.circle(mask, centre, int(rng.integers(1, 3)), 1, -1)
    return mask.astype(bool)


def render_toy_nyud_sample(rng: np.random.Generator, height: int,
                           width: int) -> Dict[str, np.ndarray]:
    """Ray-cast one toy room.

    Returns:
        dict: ``img`` (H, W, 3) uint8 BGR; ``semseg`` (H, W) uint8 stored ids 0..40 (0 =
        void); ``depth`` (H, W) float32 metres (0 = invalid); ``normals`` (H, W, 3) float32
        unit vectors in the camera frame (x right, y up, z towards the camera; zero where
        depth is invalid); ``edge`` (H, W) uint8 {0, 1}; ``classes`` (H, W) uint8 stored ids
        1..40 before the void spots (the map the edges come from); ``intrinsics`` (3, 3)
        float64 pinhole matrix for pixel-centre coordinates (pixel (u, v) has its centre at
        (u + 0.5, v + 0.5)); ``camera_height`` (float) metres above the floor.
    """
    shape = (height, width)
    focal = 0.8 * width
    cx, cy = width / 2.0, height / 2.0
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    d_cam = np.stack([(u + 0.5 - cx) / focal, (v + 0.5 - cy) / focal, np.ones(shape)], -1)
    rot = _rotation(pitch=rng.uniform(-0.25, 0.05), yaw=rng.uniform(-0.2, 0.2))
    d = _safe(d_cam @ rot.T)  # world ray directions; camera z of a hit = its t

    cam_h = rng.uniform(1.2, 1.6)  # camera height above the floor
    room_h = rng.uniform(2.5, 3.0)
    left, right = rng.uniform(1.5, 2.5), rng.uniform(1.5, 2.5)
    back = rng.uniform(4.0, 6.0)

    hits = _Hits(shape)
    hits.add(cam_h / d[..., 1], np.array([0.0, -1.0, 0.0]), FLOOR)
    hits.add((cam_h - room_h) / d[..., 1], np.array([0.0, 1.0, 0.0]), CEILING)
    hits.add(-left / d[..., 0], np.array([1.0, 0.0, 0.0]), WALL)
    hits.add(right / d[..., 0], np.array([-1.0, 0.0, 0.0]), WALL)
    hits.add(back / d[..., 2], np.array([0.0, 0.0, -1.0]), WALL)
    p = hits.t[..., None] * d  # world points of the room surfaces

    # Flat items: classes painted on the walls and floor (same geometry, other class).
    on_back = (hits.label == WALL) & (np.abs(p[..., 2] - back) < 1e-6)
    for _ in range(int(rng.integers(0, 3))):
        cls = int(rng.choice(BACK_WALL_ITEMS))
        w, h = rng.uniform(0.5, 1.2), rng.uniform(0.4, 0.9)
        x0 = rng.uniform(-left + 0.1, right - w - 0.1)
        y0 = cam_h - room_h + rng.uniform(0.4, 0.9)
        inside = (p[..., 0] >= x0) & (p[..., 0] < x0 + w) & (p[..., 1] >= y0) & (
            p[..., 1] < y0 + h)
        hits.label[on_back & inside] = cls
    if rng.random() < 0.5:
        side_x = -left if rng.random() < 0.5 else right
        on_side = (hits.label == WALL) & (np.abs(p[..., 0] - side_x) < 1e-6)
        z0 = rng.uniform(1.5, back - 1.2)
        door = (p[..., 2] >= z0) & (p[..., 2] < z0 + 0.9) & (p[..., 1] >= cam_h - 2.0)
        hits.label[on_side & door] = DOOR
    if rng.random() < 0.4:
        x0, z0 = rng.uniform(-left, right - 1.2), rng.uniform(1.5, back - 1.5)
        mat = (hits.label == FLOOR) & (p[..., 0] >= x0) & (p[..., 0] < x0 + 1.2) & (
            p[..., 2] >= z0) & (p[..., 2] < z0 + 0.8)
        hits.label[mat] = FLOOR_MAT

    # Boxes standing on the floor, not overlapping each other (a box that finds no free
    # place in 10 draws is left out).
    box_classes = list(BOX_SIZES)
    placed = []  # (x0, x1, z0, z1) footprints
    for _ in range(int(rng.integers(1, 4))):
        cls = box_classes[int(rng.integers(0, len(box_classes)))]
        (w0, w1), (h0, h1), (d0, d1) = BOX_SIZES[cls]
        w, h, dep = rng.uniform(w0, w1), rng.uniform(h0, h1), rng.uniform(d0, d1)
        dep = min(dep, back - 1.6)
        for _ in range(10):
            x0 = rng.uniform(-left + 0.05, max(-left + 0.05, right - w - 0.05))
            z0 = rng.uniform(1.5, max(1.5, back - dep - 0.05))
            if not any(x0 < b[1] and b[0] < x0 + w and z0 < b[3] and b[2] < z0 + dep
                       for b in placed):
                break
        else:
            continue
        placed.append((x0, x0 + w, z0, z0 + dep))
        lo = np.array([x0, cam_h - h, z0])
        hi = np.array([x0 + w, cam_h, z0 + dep])
        t, normal = _box_hit(d, lo, hi)
        hits.add(t, normal, cls)
    assert np.isfinite(hits.t).all()

    p = hits.t[..., None] * d
    label = hits.label
    depth = hits.t.astype(np.float32)  # camera z (d_cam has z = 1)
    n_cam = hits.normal @ rot  # world -> camera (x right, y down, z forward)
    normals = (n_cam * np.array([1.0, -1.0, -1.0])).astype(np.float32)  # y up, z to camera

    # Image: class colour x texture x Lambert shading x distance falloff + noise.
    colour = np.zeros(shape + (3, ))
    for cls, bgr in _COLOURS.items():
        colour[label == cls] = bgr
    light = _LIGHT / np.linalg.norm(_LIGHT)
    lambert = np.clip(hits.normal @ light, 0, 1)
    shade = (0.45 + 0.55 * lambert) * _texture(label, p) / (1.0 + 0.06 * hits.t)
    img = colour * shade[..., None]
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)

    edge = edge_from_label_map(label)
    semseg = label.astype(np.uint8)
    semseg[_discs(rng, shape, int(rng.integers(1, 3)))] = 0  # void spots
    holes = _discs(rng, shape, int(rng.integers(1, 4)))  # sensor holes
    depth[holes] = 0
    normals[holes] = 0
    intrinsics = np.array([[focal, 0, cx], [0, focal, cy], [0, 0, 1]])
    return dict(img=img, semseg=semseg, depth=depth, normals=normals, edge=edge,
                classes=label.astype(np.uint8), intrinsics=intrinsics, camera_height=cam_h)


def _png_bytes(arr: np.ndarray, mode: str) -> bytes:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    buf = io.BytesIO()
    Image.frombytes(mode, (arr.shape[1], arr.shape[0]), arr.tobytes()).save(buf, format='PNG')
    return buf.getvalue()


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _write(path: str, data: bytes) -> None:
    with open(path, 'wb') as f:
        f.write(data)


def make_toy_nyud_mt(out_dir: str,
                     num_train: int = 30,
                     num_val: int = 15,
                     seed: int = 0,
                     min_size: int = 64,
                     max_size: int = 96,
                     variant: str = 'mtinet') -> Dict[str, List[str]]:
    """Write a toy NYUDv2 multi-task dataset and a README.txt under ``out_dir`` (existing
    files are overwritten).

    Args:
        out_dir (str): Destination root (it gets ``images/``, ``segmentation/``, ``depth/``,
            ``normals/``, ``edge/``, ``gt_sets/``).
        num_train (int): Number of training ids. Defaults to 30.
        num_val (int): Number of validation ids. Defaults to 15.
        seed (int): Random seed; the same seed gives identical files. Defaults to 0.
        min_size (int): Smallest image side in pixels. Defaults to 64.
        max_size (int): Largest image side in pixels. Defaults to 96.
        variant (str): ``'mtinet'`` (.jpg images, .npy normals and edges) or ``'invpt'``
            (.png images, normals and edges). Defaults to 'mtinet'.

    Returns:
        dict: ``train`` and ``val`` id lists.
    """
    if num_train < 1 or num_val < 1:
        raise ValueError(f'num_train and num_val must be >= 1, got {num_train}, {num_val}')
    if not 16 <= min_size <= max_size:
        raise ValueError(f'need 16 <= min_size <= max_size, got {min_size}, {max_size}')
    if variant not in TOY_VARIANTS:
        raise ValueError(f'variant must be one of {sorted(TOY_VARIANTS)}, got {variant!r}')
    img_suffix, map_suffix = TOY_VARIANTS[variant]
    for d in ('images', 'segmentation', 'depth', 'normals', 'edge', 'gt_sets'):
        os.makedirs(osp.join(out_dir, d), exist_ok=True)

    ids = [f'toy_{i:04d}' for i in range(num_train + num_val)]
    for index, img_id in enumerate(ids):
        rng = np.random.default_rng([seed, index])
        h, w = (int(x) for x in rng.integers(min_size, max_size + 1, size=2))
        s = render_toy_nyud_sample(rng, h, w)

        def path(folder, suffix, img_id=img_id):
            return osp.join(out_dir, folder, img_id + suffix)

        params = [cv2.IMWRITE_JPEG_QUALITY, 90] if img_suffix == '.jpg' else [
            cv2.IMWRITE_PNG_COMPRESSION, 9]
        ok, img = cv2.imencode(img_suffix, s['img'], params)
        assert ok
        _write(path('images', img_suffix), img.tobytes())
        _write(path('segmentation', '.png'), _png_bytes(s['semseg'], 'L'))
        _write(path('depth', '.npy'), _npy_bytes(s['depth']))
        if map_suffix == '.npy':
            _write(path('normals', '.npy'), _npy_bytes(s['normals']))
            _write(path('edge', '.npy'), _npy_bytes(s['edge'].astype(np.float32)))
        else:
            # zero (invalid) normals become mid-grey 128, which decodes as invalid again
            rgb = np.clip(np.round((s['normals'] + 1.0) / 2.0 * 255.0), 0, 255)
            _write(path('normals', '.png'), _png_bytes(rgb, 'RGB'))
            _write(path('edge', '.png'), _png_bytes(s['edge'] * 255, 'L'))

    with open(osp.join(out_dir, 'README.txt'), 'w') as f:
        f.write(_README.format(seed=seed, num_train=num_train, num_val=num_val,
                               min_size=min_size, max_size=max_size, variant=variant,
                               variant_text=_VARIANT_TEXT[variant], img_suffix=img_suffix,
                               map_suffix=map_suffix))
    splits = dict(train=ids[:num_train], val=ids[num_train:])
    for split, split_ids in splits.items():
        with open(osp.join(out_dir, 'gt_sets', split + '.txt'), 'w') as f:
            f.write('\n'.join(split_ids) + '\n')
    return splits
