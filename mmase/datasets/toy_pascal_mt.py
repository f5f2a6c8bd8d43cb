"""A tiny synthetic dataset in the exact PASCAL_MT layout, for tests and smoke runs.

:func:`make_toy_pascal_mt` draws scenes of a smooth two- or three-region background ("sky",
"floor", "wall" stuff classes) with a few objects of four VOC classes (person, car, bird,
bottle), each with its own shape, colour and texture; persons carry PASCAL-Part parts (head,
hair, neck, torso, arms, hands, legs, feet), cars carry non-person parts (wheels, window). All
labels come from one instance map, so they agree with each other:

- ``semseg``: VOC class of each visible object, 0 elsewhere; ids stored under
  ``semseg/VOC12`` (every third id) also get a VOC-like 255 "void" band on class boundaries;
  the rest go to ``semseg/pascal-context``;
- ``pascal-context/trainval/<id>.mat``: ``LabelMap`` (uint16) with the Context id of each
  object's class and of each stuff region, so its Laplacian edges are the region boundaries;
- ``human_parts/<id>.mat``: ``anno`` in the PASCAL-Part structure (``anno[0][0][1][0]`` objects
  with class name, ``class_ind``, instance mask and ``parts`` (name, mask));
- ``sal_distill``: the visible objects (soft PNG, > 0.5 inside);
- ``normals_distill``: normals of a smooth height field (tilted floor, domes on objects), in
  RGB ``v = (n + 1) / 2 * 255``; the image is shaded with them, so they are learnable. Valid
  pixels (Context class NYU-shared) are floor, wall, person, car and bottle; sky and bird are
  not.

Everything is drawn from ``numpy.random.default_rng([seed, index])``: the same seed gives
byte-identical files (the MAT header's time stamp is replaced by a fixed text).
"""
import io
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np
from PIL import Image
from scipy import io as sio

from .pascal_mt_labels import (NORMALS_VALID_CONTEXT_IDS, PERSON_CLASS_ID, VOC_CLASSES,
                               VOC_CONTEXT_IDS, VOC_PALETTE)

#: Context ids of the toy's stuff regions (any ids that are not VOC classes would do).
STUFF_SKY = 360    # not NYU-shared: normals invalid
STUFF_FLOOR = 158  # NYU-shared: normals valid
STUFF_WALL = 440   # NYU-shared: normals valid

#: VOC class ids drawn by the toy generator.
TOY_CLASSES = (15, 7, 3, 5)  # person, car, bird, bottle
_CLASS_PROB = (0.4, 0.2, 0.2, 0.2)

# BGR colours.
_SKIN = (150, 180, 225)
_PART_COLOURS = dict(hair=(30, 40, 70), head=_SKIN, neck=_SKIN, torso=(190, 90, 40),
                     luarm=_SKIN, ruarm=_SKIN, llarm=_SKIN, rlarm=_SKIN, lhand=_SKIN,
                     rhand=_SKIN, luleg=(110, 60, 30), ruleg=(110, 60, 30),
                     llleg=(110, 60, 30), rlleg=(110, 60, 30), lfoot=(25, 25, 25),
                     rfoot=(25, 25, 25))
_MAT_HEADER = b'MATLAB 5.0 MAT-file, written by mmase make_toy_pascal_mt'

_README = """Toy PASCAL-Context multi-task dataset: generated, synthetic, not real PASCAL data.

Written by mmase.datasets.toy_pascal_mt.make_toy_pascal_mt; from the repository root:
    python tools/misc/make_toy_pascal_mt.py --out <this folder> --seed {seed} \\
        --num-train {num_train} --num-val {num_val} --min-size {min_size} --max-size {max_size}
The same arguments give byte-identical files.

Layout = the public PASCAL_MT archive: JPEGImages/<id>.jpg, ImageSets/Context/{{train,val}}.txt,
semseg/VOC12/<id>.png (every third id, with a 255 void band on class boundaries) or
semseg/pascal-context/<id>.png, pascal-context/trainval/<id>.mat ('LabelMap', uint16 Context
ids), human_parts/<id>.mat ('anno', PASCAL-Part structure), sal_distill/<id>.png,
normals_distill/<id>.png.

Scenes: sky / floor / wall stuff regions and 1-3 objects (person with parts, car with wheel
and window parts, bird, bottle) with class-dependent shape, colour and texture, shaded by the
normals of a smooth height field. {num_train} train + {num_val} val images, sides
{min_size}-{max_size} px.
"""

assert STUFF_SKY not in NORMALS_VALID_CONTEXT_IDS and STUFF_SKY not in VOC_CONTEXT_IDS
assert STUFF_FLOOR in NORMALS_VALID_CONTEXT_IDS and STUFF_FLOOR not in VOC_CONTEXT_IDS
assert STUFF_WALL in NORMALS_VALID_CONTEXT_IDS and STUFF_WALL not in VOC_CONTEXT_IDS


def _pt(x: float, y: float) -> Tuple[int, int]:
    return int(round(x)), int(round(y))


def _person_parts(shape, cx, cy, height, rng) -> List[Tuple[str, np.ndarray]]:
    """Person drawn as (part name, mask) pairs, later parts over earlier ones."""
    h = height
    y0 = cy - h / 2
    parts = []

    def limb(name, p0, p1, thick):
        m = np.zeros(shape, np.uint8)
        cv2.line(m, _pt(*p0), _pt(*p1), 1, max(1, int(round(thick))))
        parts.append((name, m))

    def disc(name, c, r):
        m = np.zeros(shape, np.uint8)
        cv2.circle(m, _pt(*c), max(1, int(round(r))), 1, -1)
        parts.append((name, m))

    for side, sgn in (('r', -1), ('l', 1)):  # the person's right is the image left
        hip = (cx + sgn * 0.07 * h, y0 + 0.55 * h)
        a = rng.uniform(-0.15, 0.35) * sgn
        knee = (hip[0] + 0.22 * h * np.sin(a), hip[1] + 0.22 * h * np.cos(a))
        b = a + rng.uniform(-0.2, 0.2)
        ankle = (knee[0] + 0.2 * h * np.sin(b), knee[1] + 0.2 * h * np.cos(b))
        limb(side + 'uleg', hip, knee, 0.08 * h)
        limb(side + 'lleg', knee, ankle, 0.065 * h)
        limb(side + 'foot', ankle, (ankle[0] + sgn * 0.05 * h, ankle[1]), 0.04 * h)
    for side, sgn in (('r', -1), ('l', 1)):
        shoulder = (cx + sgn * 0.14 * h, y0 + 0.25 * h)
        a = sgn * rng.uniform(0.1, 1.2)
        elbow = (shoulder[0] + 0.16 * h * np.sin(a), shoulder[1] + 0.16 * h * np.cos(a))
        b = a + sgn * rng.uniform(-0.3, 0.9)
        wrist = (elbow[0] + 0.15 * h * np.sin(b), elbow[1] + 0.15 * h * np.cos(b))
        limb(side + 'uarm', shoulder, elbow, 0.06 * h)
        limb(side + 'larm', elbow, wrist, 0.05 * h)
        disc(side + 'hand', wrist, 0.035 * h)
    torso = np.zeros(shape, np.uint8)
    cv2.rectangle(torso, _pt(cx - 0.13 * h, y0 + 0.21 * h), _pt(cx + 0.13 * h, y0 + 0.56 * h),
                  1, -1)
    parts.append(('torso', torso))
    neck = np.zeros(shape, np.uint8)
    cv2.rectangle(neck, _pt(cx - 0.035 * h, y0 + 0.16 * h), _pt(cx + 0.035 * h, y0 + 0.22 * h),
                  1, -1)
    parts.append(('neck', neck))
    head_c, head_r = (cx, y0 + 0.1 * h), 0.09 * h
    disc('head', head_c, head_r)
    hair = parts[-1][1].copy()  # the top of the head
    hair[int(max(0, round(head_c[1] - 0.3 * head_r))):] = 0
    parts.append(('hair', hair))
    return parts


def _car_parts(shape, cx, cy, size) -> Tuple[np.ndarray, List[Tuple[str, np.ndarray]]]:
    """Car body mask and its (non-person) parts: window, two wheels."""
    w, h = size, 0.4 * size
    body = np.zeros(shape, np.uint8)
    cv2.rectangle(body, _pt(cx - w / 2, cy - h / 4), _pt(cx + w / 2, cy + h / 2), 1, -1)
    cv2.rectangle(body, _pt(cx - w / 4, cy - h * 0.75), _pt(cx + w / 4, cy - h / 4), 1, -1)
    window = np.zeros(shape, np.uint8)
    cv2.rectangle(window, _pt(cx - w / 5, cy - h * 0.65), _pt(cx + w / 5, cy - h / 4), 1, -1)
    parts = [('window', window)]
    for sgn in (-1, 1):
        wheel = np.zeros(shape, np.uint8)
        cv2.circle(wheel, _pt(cx + sgn * w * 0.3, cy + h / 2), max(1, int(round(0.12 * w))), 1,
                   -1)
        parts.append(('wheel', wheel))
    for _, m in parts:
        body |= m
    return body, parts


def _bird_mask(shape, cx, cy, size, rng) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    facing = 1 if rng.random() < 0.5 else -1
    cv2.ellipse(m, _pt(cx, cy), _pt(0.3 * size, 0.17 * size), 0, 0, 360, 1, -1)
    head = (cx + facing * 0.3 * size, cy - 0.15 * size)
    cv2.circle(m, _pt(*head), max(1, int(round(0.1 * size))), 1, -1)
    beak = np.array([_pt(head[0] + facing * 0.08 * size, head[1] - 0.04 * size),
                     _pt(head[0] + facing * 0.22 * size, head[1]),
                     _pt(head[0] + facing * 0.08 * size, head[1] + 0.04 * size)], np.int32)
    cv2.fillPoly(m, [beak], 1)
    return m


def _bottle_mask(shape, cx, cy, size) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.rectangle(m, _pt(cx - 0.13 * size, cy - 0.15 * size), _pt(cx + 0.13 * size,
                                                                    cy + 0.4 * size), 1, -1)
    cv2.rectangle(m, _pt(cx - 0.05 * size, cy - 0.4 * size), _pt(cx + 0.05 * size,
                                                                  cy - 0.15 * size), 1, -1)
    return m


def _class_texture(voc_class: int, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """(H, W, 3) float BGR colour and texture of a non-person class."""
    shape = xx.shape + (3, )
    if voc_class == 7:  # car: red, horizontal stripes
        base = np.broadcast_to(np.array([40, 40, 190], np.float32), shape).copy()
        base *= (0.85 + 0.15 * (np.sin(yy * 1.6) > 0))[..., None]
    elif voc_class == 3:  # bird: yellow, dotted
        base = np.broadcast_to(np.array([40, 200, 230], np.float32), shape).copy()
        base *= (0.8 + 0.2 * (np.sin(xx * 1.3) * np.sin(yy * 1.3) > 0.3))[..., None]
    else:  # bottle: green, vertical highlight
        base = np.broadcast_to(np.array([60, 160, 40], np.float32), shape).copy()
        base *= (0.8 + 0.2 * np.cos(xx * 0.7) ** 2)[..., None]
    return base


def _save_mat(path: str, mdict: dict) -> None:
    """``scipy.io.savemat`` (compressed) with a fixed header text instead of a time stamp."""
    buf = io.BytesIO()
    sio.savemat(buf, mdict, do_compression=True)
    data = bytearray(buf.getvalue())
    data[:116] = _MAT_HEADER.ljust(116, b' ')
    with open(path, 'wb') as f:
        f.write(bytes(data))


def _parts_anno(img_id: str, objects: List[dict]) -> np.ndarray:
    """PASCAL-Part ``anno`` struct: imname + objects(class, class_ind, mask, parts)."""
    objs = np.zeros((1, len(objects)), dtype=[('class', 'O'), ('class_ind', 'O'),
                                                ('mask', 'O'), ('parts', 'O')])
    for k, obj in enumerate(objects):
        objs[0, k]['class'] = VOC_CLASSES[obj['class_ind']]
        objs[0, k]['class_ind'] = np.array([[obj['class_ind']]], np.uint8)
        objs[0, k]['mask'] = obj['mask'].astype(np.uint8)
        if obj['parts']:
            parts = np.zeros((1, len(obj['parts'])), dtype=[('part_name', 'O'), ('mask', 'O')])
            for j, (name, mask) in enumerate(obj['parts']):
                parts[0, j]['part_name'] = name
                parts[0, j]['mask'] = mask.astype(np.uint8)
        else:
            parts = np.zeros((0, 0))
        objs[0, k]['parts'] = parts
    anno = np.zeros((1, 1), dtype=[('imname', 'O'), ('objects', 'O')])
    anno[0, 0]['imname'] = img_id
    anno[0, 0]['objects'] = objs
    return anno


def render_toy_sample(rng: np.random.Generator, height: int, width: int) -> Dict[str, object]:
    """Draw one toy scene.

    Returns:
        dict: ``img`` (H, W, 3) uint8 BGR; ``semseg`` (H, W) uint8 VOC classes (no void);
        ``label_map`` (H, W) uint16 Context ids; ``sal`` (H, W) uint8 0..255;
        ``normals`` (H, W, 3) float32 unit vectors; ``objects``: list of dicts
        (``class_ind``, visible ``mask``, ``parts`` [(name, mask)]) for the ``anno`` file.
    """
    shape = (height, width)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)

    # Stuff: sky above a wavy horizon, floor below, sometimes a wall block.
    horizon = height * rng.uniform(0.3, 0.55) + rng.uniform(1, 4) * np.sin(
        2 * np.pi * xx / rng.uniform(30, 80) + rng.uniform(0, 2 * np.pi))
    label_map = np.where(yy < horizon, STUFF_SKY, STUFF_FLOOR).astype(np.uint16)
    # A steep floor (its normals tilt 50-65 degrees towards -y): region-dependent normals that a
    # constant prediction cannot match, so the normals task is learnable beyond its mean.
    heightf = np.where(yy < horizon, 0.0, (yy - horizon) * rng.uniform(1.2, 2.0)).astype(
        np.float32)
    heightf += 1.5 * np.sin(xx / rng.uniform(6, 14)) * (yy >= horizon)
    wall = np.zeros(shape, bool)
    if rng.random() < 0.5:
        x0 = rng.uniform(0, 0.5) * width
        wall = (xx >= x0) & (xx < x0 + rng.uniform(0.25, 0.5) * width) & \
            (yy >= horizon - rng.uniform(0.15, 0.3) * height) & (yy < horizon + 2)
        label_map[wall] = STUFF_WALL
        heightf[wall] = rng.choice([-1.0, 1.0]) * (xx[wall] - x0)

    sky = np.stack([235 + 15 * yy / height, 200 + 40 * yy / height, 150 + 80 * yy / height],
                   -1)
    floor = np.stack([60 + 0 * xx, 100 + 0 * xx, 140 + 0 * xx], -1) * (
        0.85 + 0.15 * ((np.floor(xx / 8) + np.floor(yy / 8)) % 2))[..., None]
    wallc = np.full(shape + (3, ), 150.0) * (0.9 + 0.1 * (np.sin(xx * 0.9) > 0.6))[..., None]
    colour = np.where((label_map == STUFF_SKY)[..., None], sky, floor)
    colour = np.where(wall[..., None], wallc, colour).astype(np.float32)

    # Objects, drawn in order (later ones occlude earlier ones).
    inst = np.zeros(shape, np.int32)
    drawn = []
    for k in range(int(rng.integers(1, 4))):
        voc_class = int(rng.choice(TOY_CLASSES, p=_CLASS_PROB))
        size = rng.uniform(0.45, 0.8) * min(shape) * (1.3 if voc_class == 15 else 1.0)
        cx, cy = rng.uniform(0.15, 0.85) * width, rng.uniform(0.3, 0.75) * height
        parts = []
        if voc_class == PERSON_CLASS_ID:
            parts = _person_parts(shape, cx, cy, size, rng)
            mask = np.zeros(shape, np.uint8)
            for _, m in parts:
                mask |= m
        elif voc_class == 7:
            mask, parts = _car_parts(shape, cx, cy, size)
        elif voc_class == 3:
            mask = _bird_mask(shape, cx, cy, size, rng)
        else:
            mask = _bottle_mask(shape, cx, cy, size)
        mask = mask.astype(bool)
        if not mask.any():
            continue
        inst[mask] = k + 1
        if voc_class == PERSON_CLASS_ID:
            for name, m in parts:  # paint parts in order
                colour[m.astype(bool)] = _PART_COLOURS[name]
            torso = dict(parts)['torso'].astype(bool)
            colour[torso] *= (0.8 + 0.2 * (np.sin(yy[torso] * 1.4) > 0))[..., None]
        else:
            base = _class_texture(voc_class, xx, yy)
            colour[mask] = base[mask]
            for name, m in parts:
                colour[m.astype(bool)] = (25, 25, 25) if name == 'wheel' else (230, 200, 150)
        drawn.append((k + 1, voc_class, parts))

    semseg = np.zeros(shape, np.uint8)
    objects = []
    for inst_id, voc_class, parts in drawn:
        visible = inst == inst_id
        if not visible.any():
            continue
        semseg[visible] = voc_class
        label_map[visible] = VOC_CONTEXT_IDS[voc_class]
        # parts: later parts win, restricted to the visible instance
        owner = np.full(shape, -1, np.int32)
        for j, (_, m) in enumerate(parts):
            owner[m.astype(bool)] = j
        vis_parts = []
        for j, (name, _) in enumerate(parts):
            pm = (owner == j) & visible
            if pm.any():
                vis_parts.append((name, pm))
        objects.append(dict(class_ind=voc_class, mask=visible, parts=vis_parts))
        dist = cv2.distanceTransform(visible.astype(np.uint8), cv2.DIST_L2, 3)
        heightf[visible] = heightf[visible] * 0.3 + 2.5 * np.sqrt(dist[visible])

    heightf = cv2.GaussianBlur(heightf, (0, 0), 1.0)
    dzdy, dzdx = np.gradient(heightf)
    normals = np.stack([-dzdx, -dzdy, np.ones_like(dzdx)], -1)
    normals /= np.linalg.norm(normals, axis=2, keepdims=True)
    light = np.array([-0.4, -0.5, 0.77], np.float32)
    shade = np.clip(normals @ (light / np.linalg.norm(light)), 0, 1)
    img = colour * (0.4 + 0.6 * shade)[..., None] + rng.normal(0, 3, shape + (3, ))
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)

    fg = (inst > 0).astype(np.float32) * 255
    sal = np.clip(np.round(cv2.GaussianBlur(fg, (3, 3), 0)), 0, 255).astype(np.uint8)
    return dict(img=img, semseg=semseg, label_map=label_map, sal=sal,
                normals=normals.astype(np.float32), objects=objects)


def _void_band(semseg: np.ndarray) -> np.ndarray:
    """VOC-style: 255 on pixels whose 3x3 neighbourhood holds another class."""
    kernel = np.ones((3, 3), np.uint8)
    boundary = cv2.dilate(semseg, kernel) != cv2.erode(semseg, kernel)
    out = semseg.copy()
    out[boundary] = 255
    return out


def _save_png(path: str, arr: np.ndarray, mode: str, palette=None) -> None:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    img = Image.frombytes(mode, (arr.shape[1], arr.shape[0]), arr.tobytes())
    if palette is not None:
        flat = [v for rgb in palette for v in rgb]
        img.putpalette(flat + [0] * (768 - len(flat)))
    img.save(path, format='PNG')


def make_toy_pascal_mt(out_dir: str,
                       num_train: int = 40,
                       num_val: int = 20,
                       seed: int = 0,
                       min_size: int = 64,
                       max_size: int = 128) -> Dict[str, List[str]]:
    """Write a toy PASCAL_MT dataset and a README.txt under ``out_dir`` (existing files are
    overwritten).

    Args:
        out_dir (str): Destination root (it gets ``JPEGImages/``, ``ImageSets/Context/``, ...).
        num_train (int): Number of training ids. Defaults to 40.
        num_val (int): Number of validation ids. Defaults to 20.
        seed (int): Random seed; the same seed gives identical files. Defaults to 0.
        min_size (int): Smallest image side in pixels. Defaults to 64.
        max_size (int): Largest image side in pixels. Defaults to 128.

    Returns:
        dict: ``train`` and ``val`` id lists.
    """
    if num_train < 1 or num_val < 1:
        raise ValueError(f'num_train and num_val must be >= 1, got {num_train}, {num_val}')
    if not 16 <= min_size <= max_size:
        raise ValueError(f'need 16 <= min_size <= max_size, got {min_size}, {max_size}')
    dirs = dict(img='JPEGImages', sets='ImageSets/Context', voc='semseg/VOC12',
                context_seg='semseg/pascal-context', label_map='pascal-context/trainval',
                parts='human_parts', sal='sal_distill', normals='normals_distill')
    for d in dirs.values():
        os.makedirs(osp.join(out_dir, d), exist_ok=True)

    ids = [f'toy_{i:06d}' for i in range(num_train + num_val)]
    for index, img_id in enumerate(ids):
        rng = np.random.default_rng([seed, index])
        h, w = (int(v) for v in rng.integers(min_size, max_size + 1, size=2))
        s = render_toy_sample(rng, h, w)
        ok, jpg = cv2.imencode('.jpg', s['img'], [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        with open(osp.join(out_dir, dirs['img'], img_id + '.jpg'), 'wb') as f:
            f.write(jpg.tobytes())
        if index % 3 == 0:
            _save_png(osp.join(out_dir, dirs['voc'], img_id + '.png'), _void_band(s['semseg']),
                      'P', VOC_PALETTE)
        else:
            _save_png(osp.join(out_dir, dirs['context_seg'], img_id + '.png'), s['semseg'], 'P',
                      VOC_PALETTE)
        _save_mat(osp.join(out_dir, dirs['label_map'], img_id + '.mat'),
                  dict(LabelMap=s['label_map']))
        _save_mat(osp.join(out_dir, dirs['parts'], img_id + '.mat'),
                  dict(anno=_parts_anno(img_id, s['objects'])))
        _save_png(osp.join(out_dir, dirs['sal'], img_id + '.png'), s['sal'], 'L')
        rgb = np.clip(np.round((s['normals'] + 1.0) / 2.0 * 255.0), 0, 255).astype(np.uint8)
        _save_png(osp.join(out_dir, dirs['normals'], img_id + '.png'), rgb, 'RGB')

    with open(osp.join(out_dir, 'README.txt'), 'w') as f:
        f.write(_README.format(seed=seed, num_train=num_train, num_val=num_val,
                               min_size=min_size, max_size=max_size))
    splits = dict(train=ids[:num_train], val=ids[num_train:])
    for split, split_ids in splits.items():
        with open(osp.join(out_dir, dirs['sets'], split + '.txt'), 'w') as f:
            f.write('\n'.join(split_ids) + '\n')
    return splits
