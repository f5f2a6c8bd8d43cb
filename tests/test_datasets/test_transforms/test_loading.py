"""LoadMultiTaskAnnotations on a generated toy sample and on broken files."""
import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from PIL import Image

from mmase.datasets import LoadMultiTaskAnnotations, PascalContextMTDataset
from ..helpers import anno_struct, mat_bytes, png_bytes, write


def load_info(root, index=0, tasks=None):
    kwargs = {} if tasks is None else dict(tasks=tasks)
    ds = PascalContextMTDataset(
        ann_file='ImageSets/Context/train.txt', data_root=str(root), **kwargs)
    return LoadImageFromFile()(ds.get_data_info(index))


def test_loads_every_task(toy_root):
    results = LoadMultiTaskAnnotations()(load_info(toy_root))
    h, w = results['ori_shape']
    assert results['task_fields'] == ['gt_sem_seg', 'gt_human_parts', 'gt_sal', 'gt_normals',
                                      'gt_edge']
    for key in ('gt_sem_seg', 'gt_human_parts', 'gt_sal', 'gt_edge'):
        assert results[key].shape == (h, w) and results[key].dtype == np.uint8, key
    assert results['gt_normals'].shape == (h, w, 3)
    assert results['gt_normals'].dtype == np.float32
    assert set(np.unique(results['gt_sal'])) <= {0, 1}
    assert set(np.unique(results['gt_edge'])) <= {0, 1}
    assert results['gt_edge'].any()


def test_explicit_tasks_override_the_sample(toy_root):
    results = LoadMultiTaskAnnotations(tasks=('sal', ))(load_info(toy_root))
    assert results['task_fields'] == ['gt_sal']
    assert 'gt_sem_seg' not in results
    with pytest.raises(KeyError, match='seg_map_path'):
        LoadMultiTaskAnnotations(tasks=('semseg', ))(load_info(toy_root, tasks=('sal', )))
    with pytest.raises(ValueError, match='unknown task'):
        LoadMultiTaskAnnotations(tasks=('bogus', ))


def test_needs_the_image_first(toy_root):
    ds = PascalContextMTDataset(ann_file='ImageSets/Context/train.txt', data_root=str(toy_root))
    with pytest.raises(KeyError, match='LoadMultiTaskImageFromFile'):
        LoadMultiTaskAnnotations()(ds.get_data_info(0))


def _size(path):
    return np.asarray(Image.open(path)).shape[:2]


@pytest.mark.parametrize('task,sub,name', [
    ('sal', 'sal_distill', 'toy_000001.png'),
    ('semseg', 'semseg/pascal-context', 'toy_000001.png'),
    ('normals', 'normals_distill', 'toy_000001.png'),
])
def test_png_size_mismatch_names_the_file(toy_copy, task, sub, name):
    path = toy_copy / sub / name
    h, w = _size(path)
    mode = 'RGB' if task == 'normals' else 'L'
    shape = (h + 1, w, 3) if task == 'normals' else (h + 1, w)
    write(path, png_bytes(np.zeros(shape, np.uint8), mode))
    with pytest.raises(ValueError, match=rf'{name}.*{h + 1}x{w}.*{h}x{w}'):
        LoadMultiTaskAnnotations()(load_info(toy_copy, 1))


def test_mat_size_mismatch_names_the_file(toy_copy):
    h, w = _size(toy_copy / 'JPEGImages' / 'toy_000001.jpg')
    lm = toy_copy / 'pascal-context' / 'trainval' / 'toy_000001.mat'
    write(lm, mat_bytes(dict(LabelMap=np.ones((h, w + 2), np.uint16))))
    with pytest.raises(ValueError, match=rf'toy_000001\.mat.*{h}x{w + 2}'):
        LoadMultiTaskAnnotations(tasks=('edge', ))(load_info(toy_copy, 1))
    parts = toy_copy / 'human_parts' / 'toy_000001.mat'
    m = np.ones((h - 1, w), np.uint8)
    write(parts, mat_bytes(dict(anno=anno_struct([('person', 15, m, [('head', m)])]))))
    with pytest.raises(ValueError, match=r'human_parts/toy_000001\.mat'):
        LoadMultiTaskAnnotations(tasks=('human_parts', ))(load_info(toy_copy, 1))


@pytest.mark.parametrize('task,sub,name', [
    ('sal', 'sal_distill', 'toy_000002.png'),
    ('normals', 'normals_distill', 'toy_000002.png'),
    ('edge', 'pascal-context/trainval', 'toy_000002.mat'),
    ('human_parts', 'human_parts', 'toy_000002.mat'),
])
def test_truncated_files_name_the_file(toy_copy, task, sub, name):
    path = toy_copy / sub / name
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(OSError, match=rf'{sub}/{name}'):
        LoadMultiTaskAnnotations(tasks=(task, ))(load_info(toy_copy, 2))


def test_jpeg_exif_orientation_is_ignored(tmp_path, toy_copy):
    """A JPEG tagged "rotate 90" loads as stored (as its label maps are), through the name
    the dataset configs use, dict(type='LoadMultiTaskImageFromFile')."""
    import io

    from mmseg.registry import TRANSFORMS
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)
    plain, tagged = tmp_path / 'plain.jpg', tmp_path / 'tagged.jpg'
    Image.fromarray(pixels).save(plain, quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF Orientation: rotate 90 degrees clockwise to display
    Image.fromarray(pixels).save(tagged, quality=95, exif=exif.tobytes())
    for backend in ('cv2', 'pillow'):
        load = TRANSFORMS.build(dict(type='LoadMultiTaskImageFromFile',
                                     imdecode_backend=backend))
        img = load(dict(img_path=str(tagged)))['img']
        assert img.shape == (24, 40, 3), backend
        np.testing.assert_array_equal(img, load(dict(img_path=str(plain)))['img'])
    rotated = TRANSFORMS.build(dict(type='LoadMultiTaskImageFromFile',
                                    ignore_orientation=False))
    assert rotated(dict(img_path=str(tagged)))['img'].shape == (40, 24, 3)  # mmcv's behaviour
    # a tagged toy image still lines up with its labels (sizes checked by the annotations)
    ds = PascalContextMTDataset(ann_file='ImageSets/Context/train.txt', data_root=str(toy_copy))
    info = ds.get_data_info(0)
    image = Image.open(info['img_path'])
    buf = io.BytesIO()
    image.save(buf, format='JPEG', quality=95, exif=exif.tobytes())
    with open(info['img_path'], 'wb') as f:
        f.write(buf.getvalue())
    loader = TRANSFORMS.build(dict(type='LoadMultiTaskImageFromFile'))
    results = LoadMultiTaskAnnotations()(loader(info))
    assert results['img'].shape[:2] == results['gt_sem_seg'].shape == image.size[::-1]
