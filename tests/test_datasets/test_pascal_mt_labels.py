"""Decoders of the PASCAL_MT label files, checked on tiny hand-made files."""
import numpy as np
import pytest

from mmase.datasets.pascal_mt_labels import (HUMAN_PART_NAME_TO_CLASS,
                                             NORMALS_VALID_CONTEXT_IDS, VOC_PALETTE,
                                             decode_human_parts, decode_label_map,
                                             decode_normals, decode_sal, decode_semseg,
                                             edge_from_label_map, mask_normals)
from .helpers import anno_struct, mat_bytes, png_bytes


def test_tables():
    assert len(NORMALS_VALID_CONTEXT_IDS) == 170
    assert VOC_PALETTE[:5] == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    assert VOC_PALETTE[15] == [192, 128, 128]  # person
    assert len(HUMAN_PART_NAME_TO_CLASS) == 24
    assert sorted(set(HUMAN_PART_NAME_TO_CLASS.values())) == [1, 2, 3, 4, 5, 6]


def _m(rows):
    return np.array(rows, np.uint8)


def test_human_parts_from_hand_made_anno():
    # 4 x 5 image. Person A (class 15): head on row 0, torso rows 1-2 cols 1-3, left upper
    # arm at (1, 4), left hand at (2, 4), right foot at (3, 1), upper leg at (3, 2).
    # A car (class 7) with a 'wheel' part at (3, 4) and a person without parts at (3, 0)
    # must not paint anything.
    head = _m([[0, 1, 1, 1, 0], [0] * 5, [0] * 5, [0] * 5])
    hair = _m([[0, 0, 1, 0, 0], [0] * 5, [0] * 5, [0] * 5])
    torso = _m([[0] * 5, [0, 1, 1, 1, 0], [0, 1, 1, 1, 0], [0] * 5])
    luarm = _m([[0] * 5, [0, 0, 0, 0, 1], [0] * 5, [0] * 5])
    lhand = _m([[0] * 5, [0] * 5, [0, 0, 0, 0, 1], [0] * 5])
    rfoot = _m([[0] * 5, [0] * 5, [0] * 5, [0, 1, 0, 0, 0]])
    luleg = _m([[0] * 5, [0] * 5, [0] * 5, [0, 0, 1, 0, 0]])
    person_mask = head | torso | luarm | lhand | rfoot | luleg
    wheel = _m([[0] * 5, [0] * 5, [0] * 5, [0, 0, 0, 0, 1]])
    lonely = _m([[0] * 5, [0] * 5, [0] * 5, [1, 0, 0, 0, 0]])
    anno = anno_struct([
        ('car', 7, wheel, [('wheel', wheel)]),
        ('person', 15, person_mask, [('head', head), ('hair', hair), ('torso', torso),
                                     ('luarm', luarm), ('lhand', lhand), ('rfoot', rfoot),
                                     ('luleg', luleg)]),
        ('person', 15, lonely, []),
    ])
    out = decode_human_parts(mat_bytes(dict(anno=anno)), 'x.mat', (4, 5))
    expected = np.array([[0, 1, 1, 1, 0],
                         [0, 2, 2, 2, 3],
                         [0, 2, 2, 2, 4],
                         [0, 6, 5, 0, 0]], np.uint8)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)


def test_human_parts_without_persons_is_background():
    car = np.ones((3, 4), np.uint8)
    anno = anno_struct([('car', 7, car, [('wheel', car)])])
    out = decode_human_parts(mat_bytes(dict(anno=anno)), 'x.mat', (3, 4))
    np.testing.assert_array_equal(out, np.zeros((3, 4), np.uint8))
    empty = decode_human_parts(mat_bytes(dict(anno=anno_struct([]))), 'x.mat', (3, 4))
    np.testing.assert_array_equal(empty, np.zeros((3, 4), np.uint8))


def test_human_parts_errors_name_the_file():
    m = np.ones((3, 4), np.uint8)
    bad_name = anno_struct([('person', 15, m, [('tail', m)])])
    with pytest.raises(ValueError, match=r'p/1\.mat.*tail'):
        decode_human_parts(mat_bytes(dict(anno=bad_name)), 'p/1.mat', (3, 4))
    with pytest.raises(ValueError, match=r'p/1\.mat.*3x4.*4x4'):
        good = anno_struct([('person', 15, m, [('head', m)])])
        decode_human_parts(mat_bytes(dict(anno=good)), 'p/1.mat', (4, 4))
    with pytest.raises(KeyError, match=r'p/1\.mat.*anno'):
        decode_human_parts(mat_bytes(dict(other=m)), 'p/1.mat', (3, 4))
    data = mat_bytes(dict(anno=anno_struct([('person', 15, m, [('head', m)])])))
    with pytest.raises(OSError, match=r'p/1\.mat'):
        decode_human_parts(data[:len(data) // 2], 'p/1.mat', (3, 4))


def test_edge_of_a_step():
    # LabelMap 1 | 2 split between columns 2 and 3. The 3x3 Laplacian (sum of the 4
    # neighbours - 4 x centre) is +1 on column 2 (1+1+1+2-4) and -1 on column 3 (2+2+2+1-8),
    # 0 elsewhere (reflected borders repeat the rows), so |L| > 0 is the 2-px band of columns
    # 2-3; thinning keeps one pixel of it per row: column 2 (skimage drops the top row of a
    # band touching the border).
    label_map = np.ones((5, 6), np.uint16)
    label_map[:, 3:] = 2
    expected = np.zeros((5, 6), np.uint8)
    expected[1:, 2] = 1
    out = edge_from_label_map(label_map)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)


def test_edge_of_a_square_and_uniform_map():
    # A 2x2 square of 3 in a field of 1: |L| > 0 on the square and its 8 edge-neighbours
    # (a plus-shaped blob); thinning shrinks the compact blob to one pixel.
    label_map = np.ones((6, 6), np.uint16)
    label_map[2:4, 2:4] = 3
    expected = np.zeros((6, 6), np.uint8)
    expected[3, 2] = 1
    np.testing.assert_array_equal(edge_from_label_map(label_map), expected)
    np.testing.assert_array_equal(edge_from_label_map(np.full((4, 4), 9, np.uint16)),
                                  np.zeros((4, 4), np.uint8))


def test_normals_png_to_vectors():
    # RGB = (x, y, z): (255, 128, 128) -> +x, (128, 0, 128) -> -y, (128, 128, 255) -> +z,
    # (0, 128, 128) -> -x. Stored with PIL as RGB, so a BGR mix-up would swap x and z.
    rgb = np.array([[[255, 128, 128], [128, 0, 128]],
                    [[128, 128, 255], [0, 128, 128]]], np.uint8)
    n = decode_normals(png_bytes(rgb, 'RGB'), 'n.png')
    assert n.dtype == np.float32 and n.shape == (2, 2, 3)
    expected = np.array([[[1, 0, 0], [0, -1, 0]], [[0, 0, 1], [-1, 0, 0]]], np.float32)
    np.testing.assert_allclose(n, expected, atol=0.01)
    np.testing.assert_allclose(np.linalg.norm(n, axis=2), 1.0, atol=1e-5)
    # Context 9 is NYU-shared; 2 (aeroplane) and 25 (bird) are not.
    label_map = np.array([[9, 2], [25, 9]], np.uint16)
    masked = mask_normals(n, label_map)
    np.testing.assert_array_equal(masked[0, 1], 0)
    np.testing.assert_array_equal(masked[1, 0], 0)
    np.testing.assert_array_equal(masked[0, 0], n[0, 0])
    np.testing.assert_array_equal(masked[1, 1], n[1, 1])
    with pytest.raises(ValueError, match=r'n\.png.*RGB'):
        decode_normals(png_bytes(rgb[..., 0], 'L'), 'n.png')


def test_sal_threshold():
    grey = np.array([[0, 127, 128, 255]], np.uint8)  # 127/255 = 0.498, 128/255 = 0.502
    out = decode_sal(png_bytes(grey, 'L'), 's.png')
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match=r's\.png'):
        decode_sal(png_bytes(np.zeros((2, 2, 3)), 'RGB'), 's.png')


def test_semseg_palette_png_and_errors():
    seg = np.array([[0, 15, 255], [20, 3, 0]], np.uint8)
    palette = [v for rgb in VOC_PALETTE for v in rgb]
    out = decode_semseg(png_bytes(seg, 'P', palette), 'c.png')
    np.testing.assert_array_equal(out, seg)
    with pytest.raises(ValueError, match=r'c\.png.*21'):
        decode_semseg(png_bytes(np.array([[0, 21]]), 'L'), 'c.png')
    data = png_bytes(np.zeros((30, 30), np.uint8) + np.arange(30, dtype=np.uint8) % 21, 'L')
    with pytest.raises(OSError, match=r'c\.png'):
        decode_semseg(data[:len(data) - 20], 'c.png')


def test_label_map():
    lm = np.array([[1, 459], [23, 23]], np.uint16)
    out = decode_label_map(mat_bytes(dict(LabelMap=lm)), 'l.mat')
    np.testing.assert_array_equal(out, lm)
    as_float = decode_label_map(mat_bytes(dict(LabelMap=lm.astype(float))), 'l.mat')
    np.testing.assert_array_equal(as_float, lm)
    with pytest.raises(ValueError, match=r'l\.mat.*integer class ids'):
        decode_label_map(mat_bytes(dict(LabelMap=lm + 0.5)), 'l.mat')
    with pytest.raises(KeyError, match=r'l\.mat.*LabelMap'):
        decode_label_map(mat_bytes(dict(Other=lm)), 'l.mat')
    with pytest.raises(OSError, match=r'l\.mat'):
        decode_label_map(b'not a mat file at all' * 10, 'l.mat')
