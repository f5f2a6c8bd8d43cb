"""Writers of tiny hand-made PASCAL_MT files for the dataset tests (independent of the toy
generator, so they check the decoders against the public file formats)."""
import io

import numpy as np
from PIL import Image
from scipy import io as sio


def png_bytes(arr: np.ndarray, mode: str, palette=None) -> bytes:
    """PNG bytes of a uint8 array in PIL ``mode`` ('L', 'P', 'RGB')."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    img = Image.frombytes(mode, (arr.shape[1], arr.shape[0]), arr.tobytes())
    if palette is not None:
        img.putpalette(palette)
    buf = io.BytesIO()
    img.save(buf, format='PNG')
    return buf.getvalue()


def mat_bytes(mdict: dict) -> bytes:
    buf = io.BytesIO()
    sio.savemat(buf, mdict)
    return buf.getvalue()


def anno_struct(objects):
    """PASCAL-Part ``anno``: objects = [(class name, class id, mask, [(part name, mask)])]."""
    objs = np.zeros((1, len(objects)), dtype=[('class', 'O'), ('class_ind', 'O'),
                                                ('mask', 'O'), ('parts', 'O')])
    for k, (name, cid, mask, parts) in enumerate(objects):
        objs[0, k]['class'] = name
        objs[0, k]['class_ind'] = np.array([[cid]], np.uint8)
        objs[0, k]['mask'] = np.asarray(mask, np.uint8)
        if parts:
            arr = np.zeros((1, len(parts)), dtype=[('part_name', 'O'), ('mask', 'O')])
            for j, (pname, pmask) in enumerate(parts):
                arr[0, j]['part_name'] = pname
                arr[0, j]['mask'] = np.asarray(pmask, np.uint8)
        else:
            arr = np.zeros((0, 0))
        objs[0, k]['parts'] = arr
    anno = np.zeros((1, 1), dtype=[('imname', 'O'), ('objects', 'O')])
    anno[0, 0]['imname'] = 'x'
    anno[0, 0]['objects'] = objs
    return anno


def write(path, data: bytes) -> str:
    with open(path, 'wb') as f:
        f.write(data)
    return str(path)
