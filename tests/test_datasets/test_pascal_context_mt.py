"""PascalContextMTDataset: building, file lookup, build-time errors, the full pipeline."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from PIL import Image

from mmase.datasets import PascalContextMTDataset
from mmase.tasks import get_task_spec
from .helpers import anno_struct, mat_bytes, png_bytes, write

TRAIN = 'ImageSets/Context/train.txt'


def build(root, **kwargs):
    kwargs.setdefault('ann_file', TRAIN)
    return PascalContextMTDataset(data_root=str(root), **kwargs)


def test_data_infos_and_metainfo(toy_root):
    ds = build(toy_root)
    assert len(ds) == 3
    info = ds.get_data_info(0)
    assert info['img_id'] == 'toy_000000'
    assert info['img_path'] == osp.join(str(toy_root), 'JPEGImages', 'toy_000000.jpg')
    assert info['tasks'] == ('semseg', 'human_parts', 'sal', 'normals', 'edge')
    assert info['task_fields'] == []
    assert info['human_parts_path'].endswith(osp.join('human_parts', 'toy_000000.mat'))
    assert info['label_map_path'].endswith(
        osp.join('pascal-context', 'trainval', 'toy_000000.mat'))
    meta = ds.metainfo
    assert len(meta['classes']) == 21 and meta['classes'][15] == 'person'
    assert len(meta['palette']) == 21
    assert meta['tasks'] == ('semseg', 'human_parts', 'sal', 'normals', 'edge')
    assert meta['task_classes']['human_parts'] == (
        'background', 'head', 'torso', 'upper arm', 'lower arm', 'upper leg', 'lower leg')
    assert len(meta['task_classes']['semseg']) == 21
    assert len(meta['task_palettes']['human_parts']) == 7


def test_task_subset_only_needs_its_files(toy_copy):
    os.remove(toy_copy / 'sal_distill' / 'toy_000001.png')
    ds = build(toy_copy, tasks=('edge', ))
    info = ds.get_data_info(1)
    assert 'label_map_path' in info
    assert not {'seg_map_path', 'sal_path', 'normals_path', 'human_parts_path'} & set(info)
    assert ds.metainfo['tasks'] == ('edge', )
    with pytest.raises(FileNotFoundError, match=r'sal_distill/toy_000001\.png'):
        build(toy_copy, tasks=('sal', 'edge'))


def test_voc12_is_looked_up_before_pascal_context(toy_copy):
    # the toy stores id 0 under VOC12 and id 1 under pascal-context; give id 0 a second,
    # different file under pascal-context: VOC12 must win.
    voc = toy_copy / 'semseg' / 'VOC12' / 'toy_000000.png'
    ctx = toy_copy / 'semseg' / 'pascal-context' / 'toy_000000.png'
    assert voc.exists() and not ctx.exists()
    assert (toy_copy / 'semseg' / 'pascal-context' / 'toy_000001.png').exists()
    from PIL import Image
    h, w = np.asarray(Image.open(voc)).shape
    write(ctx, png_bytes(np.full((h, w), 9, np.uint8), 'L'))
    pipeline = [dict(type='LoadMultiTaskImageFromFile'), dict(type='LoadMultiTaskAnnotations')]
    ds = build(toy_copy, tasks=('semseg', ), pipeline=pipeline)
    assert ds.get_data_info(0)['seg_map_path'] == str(voc)
    assert ds.get_data_info(1)['seg_map_path'] == str(
        toy_copy / 'semseg' / 'pascal-context' / 'toy_000001.png')
    seg = ds[0]['gt_sem_seg']
    assert 255 in seg and 9 not in seg  # the VOC12 file, with its void band
    os.remove(voc)
    ds = build(toy_copy, tasks=('semseg', ), pipeline=pipeline)
    assert ds.get_data_info(0)['seg_map_path'] == str(ctx)
    np.testing.assert_array_equal(ds[0]['gt_sem_seg'], 9)
    os.remove(ctx)
    with pytest.raises(FileNotFoundError,
                       match=r'semseg/VOC12/toy_000000\.png or .*pascal-context/toy_000000'):
        build(toy_copy, tasks=('semseg', ))


def test_build_errors(toy_copy):
    with pytest.raises(FileNotFoundError, match=r'ImageSets/Context/nope\.txt'):
        build(toy_copy, ann_file='ImageSets/Context/nope.txt')
    empty = toy_copy / 'ImageSets' / 'Context' / 'empty.txt'
    empty.write_text('\n  \n')
    with pytest.raises(ValueError, match=r'empty\.txt lists no image id'):
        build(toy_copy, ann_file=str(empty))
    bad = toy_copy / 'ImageSets' / 'Context' / 'bad.txt'
    bad.write_text('toy_000000\nghost_01\n')
    with pytest.raises(FileNotFoundError, match=r'JPEGImages/ghost_01\.jpg'):
        build(toy_copy, ann_file=str(bad))
    os.remove(toy_copy / 'human_parts' / 'toy_000002.mat')
    with pytest.raises(FileNotFoundError, match=r'human_parts/toy_000002\.mat'):
        build(toy_copy)
    with pytest.raises(ValueError, match=r"tasks: task 'depth' is not available"):
        build(toy_copy, tasks=('semseg', 'depth'))
    with pytest.raises(ValueError, match=r"tasks: unknown task 'segm'"):
        build(toy_copy, tasks=('segm', ))
    with pytest.raises(ValueError, match='data_root'):
        PascalContextMTDataset(ann_file=TRAIN)
    with pytest.raises(ValueError, match='class subsets'):
        build(toy_copy, tasks=('sal', ), metainfo=dict(classes=('background', 'person')))


def _check_contract(sample, tasks, size=None):
    inputs, ds = sample['inputs'], sample['data_samples']
    assert inputs.dtype == torch.uint8 and inputs.ndim == 3 and inputs.shape[0] == 3
    for key in ('img_path', 'img_id', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor',
                'flip', 'flip_direction', 'tasks'):
        assert key in ds.metainfo, key
    assert ds.tasks == tasks
    h, w = size if size is not None else inputs.shape[1:]
    for task in tasks:
        spec = get_task_spec(task)
        gt = getattr(ds, spec.gt_field)
        assert isinstance(gt, PixelData)
        data = gt.data
        if task == 'normals':
            assert data.dtype == torch.float32 and data.shape == (3, h, w)
            norm = data.norm(dim=0)
            assert torch.all((norm == 0) | ((norm - 1).abs() < 1e-4))
        else:
            assert data.dtype == torch.int64 and data.shape == (1, h, w)
            values = set(data.unique().tolist())
            top = {'semseg': 20, 'human_parts': 6}.get(task, 1)
            assert values <= set(range(top + 1)) | {255}, (task, values)


def test_train_and_val_pipelines_give_the_contract(toy_root):
    tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
    train_pipeline = [
        dict(type='LoadMultiTaskImageFromFile'),
        dict(type='LoadMultiTaskAnnotations'),
        dict(type='MultiTaskRandomResize', scale=(64, 64), ratio_range=(0.5, 1.5)),
        dict(type='MultiTaskRandomCrop', crop_size=(32, 48), cat_max_ratio=0.75),
        dict(type='MultiTaskRandomFlip', prob=0.5),
        dict(type='PhotoMetricDistortion'),
        dict(type='MultiTaskPad', size=(32, 48)),
        dict(type='IgnoreEmptyHumanParts'),
        dict(type='PackMultiTaskInputs'),
    ]
    ds = build(toy_root, pipeline=train_pipeline)
    for i in range(len(ds)):
        sample = ds[i]
        assert sample['inputs'].shape == (3, 32, 48)
        _check_contract(sample, tasks)
        assert sample['data_samples'].pad_shape == (32, 48)

    val_pipeline = [
        dict(type='LoadMultiTaskImageFromFile'),
        dict(type='MultiTaskResize', scale=(32, 32), keep_ratio=True),
        dict(type='LoadMultiTaskAnnotations'),
        dict(type='PackMultiTaskInputs'),
    ]
    ds = build(toy_root, ann_file='ImageSets/Context/val.txt', pipeline=val_pipeline,
               test_mode=True)
    assert len(ds) == 2
    for i in range(len(ds)):
        sample = ds[i]
        meta = sample['data_samples'].metainfo
        assert max(sample['inputs'].shape[1:]) == 32
        assert meta['img_shape'] == tuple(sample['inputs'].shape[1:])
        assert meta['flip'] is False and meta['flip_direction'] is None
        # ground truth at the original size
        _check_contract(sample, tasks, size=meta['ori_shape'])


def test_filter_with_persons_keeps_images_listing_a_person(toy_copy):
    # Rewrite the three train ids' PASCAL-Part files: a person with parts, a person without
    # parts (the public loaders keep it: they test the object classes), only a car.
    ids = [f'toy_{i:06d}' for i in range(3)]
    for img_id, objects in zip(ids, [
            lambda m: [('person', 15, m, [('head', m)])],
            lambda m: [('car', 7, m, []), ('person', 15, m, [])],
            lambda m: [('car', 7, m, [('wheel', m)])]]):
        info = build(toy_copy).get_data_info(ids.index(img_id))
        with Image.open(info['img_path']) as img:
            width, height = img.size
        mask = np.ones((height, width), np.uint8)
        write(toy_copy / 'human_parts' / f'{img_id}.mat',
              mat_bytes(dict(anno=anno_struct(objects(mask)))))
    kept = build(toy_copy, tasks=('human_parts', ), filter_cfg=dict(with_persons=True))
    assert [kept.get_data_info(i)['img_id'] for i in range(len(kept))] == ids[:2]
    assert len(build(toy_copy, tasks=('human_parts', ))) == 3  # no filter: all images
    assert len(build(toy_copy, tasks=('human_parts', ),
                     filter_cfg=dict(with_persons=False))) == 3


def test_filter_with_persons_errors(toy_copy):
    with pytest.raises(ValueError, match=r"filter_cfg.with_persons=True needs 'human_parts'"):
        build(toy_copy, tasks=('sal', ), filter_cfg=dict(with_persons=True))
    with pytest.raises(ValueError, match=r"unknown keys \['min_size'\]"):
        build(toy_copy, filter_cfg=dict(min_size=32))
    with pytest.raises(TypeError, match='with_persons must be True or False'):
        build(toy_copy, filter_cfg=dict(with_persons='yes'))
    for i in range(3):  # no image of the split has a person
        write(toy_copy / 'human_parts' / f'toy_{i:06d}.mat',
              mat_bytes(dict(anno=anno_struct([]))))
    with pytest.raises(ValueError, match=r'no image of .*train\.txt has a person'):
        build(toy_copy, tasks=('human_parts', ), filter_cfg=dict(with_persons=True))
    write(toy_copy / 'human_parts' / 'toy_000001.mat', b'not a mat file')
    with pytest.raises(OSError, match=r'toy_000001\.mat'):
        build(toy_copy, tasks=('human_parts', ), filter_cfg=dict(with_persons=True))
