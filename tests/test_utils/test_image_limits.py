"""mmase.utils.image_limits and the datasets' LoadMultiTaskImageFromFile: sizes read from
headers, images over the pixel limit refused before decoding, unreadable images named."""
import struct
import zlib

import cv2
import numpy as np
import pytest

from mmase.utils.image_limits import (DEFAULT_MAX_PIXELS, ImageTooLargeError, check_image_file,
                                      image_header_size, max_image_pixels)


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` RGB, with an empty (invalid) IDAT: a
    decoder would allocate the full image before finding the data missing."""
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2,
                                                               0, 0, 0))
            + chunk(b'IDAT', zlib.compress(b'')) + chunk(b'IEND', b''))


def test_sizes_from_headers_of_real_files(tmp_path):
    image = np.zeros((30, 70, 3), np.uint8)
    for suffix in ('.jpg', '.png', '.bmp', '.tif', '.webp'):
        path = str(tmp_path / f'a{suffix}')
        assert cv2.imwrite(path, image)
        assert image_header_size(path) == (70, 30), suffix
        assert check_image_file(path) == (70, 30)


def test_crafted_header_refused_naming_file_and_both_sizes(tmp_path):
    path = tmp_path / 'bomb.png'
    path.write_bytes(png_header(30000, 30000))
    assert path.stat().st_size < 200
    with pytest.raises(ImageTooLargeError,
                       match=r'bomb\.png is 30000x30000 = 900000000 pixels, more than the limit '
                             r'of 268435456 pixels'):
        check_image_file(str(path))
    assert check_image_file(str(path), max_pixels=900_000_000) == (30000, 30000)


def test_limit_from_argument_environment_default(monkeypatch):
    monkeypatch.delenv('MMASE_MAX_IMAGE_PIXELS', raising=False)
    assert max_image_pixels() == DEFAULT_MAX_PIXELS == 16384 * 16384
    assert DEFAULT_MAX_PIXELS > 16320 * 12240  # a 200-megapixel phone photo passes
    monkeypatch.setenv('MMASE_MAX_IMAGE_PIXELS', '1000')
    assert max_image_pixels() == 1000
    assert max_image_pixels(5) == 5
    monkeypatch.setenv('MMASE_MAX_IMAGE_PIXELS', 'lots')
    with pytest.raises(ValueError, match="MMASE_MAX_IMAGE_PIXELS='lots'"):
        max_image_pixels()
    with pytest.raises(ValueError, match='max_pixels=0'):
        max_image_pixels(0)


def test_empty_and_non_image_files_are_named(tmp_path):
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match=r'empty\.jpg: the file is empty'):
        check_image_file(str(empty))
    text = tmp_path / 'notes.png'
    text.write_text('not an image')
    with pytest.raises(ValueError, match=r'notes\.png: not an image format'):
        check_image_file(str(text))


def test_dataset_loader_checks_the_header_before_decoding(tmp_path, monkeypatch):
    from mmseg.registry import TRANSFORMS

    import mmase  # noqa: F401
    decoded = []
    import mmcv
    real = mmcv.imfrombytes
    monkeypatch.setattr(mmcv, 'imfrombytes', lambda *a, **k: decoded.append(1) or real(*a, **k))
    bomb = tmp_path / 'bomb.png'
    bomb.write_bytes(png_header(30000, 30000))
    load = TRANSFORMS.build(dict(type='LoadMultiTaskImageFromFile'))
    with pytest.raises(ImageTooLargeError, match=r'bomb\.png is 30000x30000'):
        load(dict(img_path=str(bomb)))
    # ignore_empty skips unreadable files, never a refused one
    with pytest.raises(ImageTooLargeError):
        TRANSFORMS.build(dict(type='LoadMultiTaskImageFromFile', ignore_empty=True))(
            dict(img_path=str(bomb)))
    assert decoded == []
    small = str(tmp_path / 'small.png')
    cv2.imwrite(small, np.full((8, 10, 3), 7, np.uint8))
    assert load(dict(img_path=small))['img'].shape == (8, 10, 3)
    with pytest.raises(ImageTooLargeError, match=r'small\.png is 10x8 = 80 pixels.*limit of 79'):
        TRANSFORMS.build(dict(type='LoadMultiTaskImageFromFile', max_pixels=79))(
            dict(img_path=small))
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match=r'empty\.jpg'):  # was cv2.error '!buf.empty()'
        load(dict(img_path=str(empty)))
    with pytest.raises(ValueError, match='max_pixels=-1'):
        TRANSFORMS.build(dict(type='LoadMultiTaskImageFromFile', max_pixels=-1))
