"""The _base_ dataset configs load, build, and feed the contract on the committed toy set."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmseg.registry import DATASETS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(REPO, 'configs', '_base_', 'datasets')
TASKS = ('semseg', 'human_parts', 'sal', 'normals', 'edge')


def test_pascal_context_mt_config():
    cfg = Config.fromfile(osp.join(CFG_DIR, 'pascal_context_mt.py'))
    assert cfg.tasks == TASKS
    assert cfg.train_dataloader.dataset.data_root == 'data/PASCAL_MT'
    assert cfg.train_dataloader.dataset.ann_file == 'ImageSets/Context/train.txt'
    assert cfg.val_dataloader.dataset.ann_file == 'ImageSets/Context/val.txt'
    assert cfg.train_dataloader.sampler.type == 'InfiniteSampler'
    assert cfg.val_dataloader.sampler.type == 'DefaultSampler'
    types = [t.type for t in cfg.train_pipeline]
    assert types == ['LoadMultiTaskImageFromFile', 'LoadMultiTaskAnnotations',
                     'MultiTaskRandomResize', 'MultiTaskRandomCrop', 'MultiTaskRandomFlip',
                     'PhotoMetricDistortion', 'MultiTaskPad', 'IgnoreEmptyHumanParts',
                     'PackMultiTaskInputs']
    assert cfg.train_pipeline[2].ratio_range == (0.5, 2.0)
    assert cfg.train_pipeline[3].crop_size == (512, 512)
    # test: resize the image, then load the ground truth at its original size
    assert [t.type for t in cfg.test_pipeline][1:3] == ['MultiTaskResize',
                                                        'LoadMultiTaskAnnotations']
    assert 'val_evaluator' not in cfg


@pytest.mark.skipif(not osp.isdir(osp.join(REPO, 'data', 'toy_pascal_mt')),
                    reason='data/toy_pascal_mt is not present')
def test_toy_config_builds_on_the_committed_data():
    cfg = Config.fromfile(osp.join(CFG_DIR, 'toy_pascal_mt.py'))
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.crop_size == (64, 64)
    for loader in ('train_dataloader', 'val_dataloader'):
        cfg[loader].dataset.data_root = osp.join(REPO, 'data', 'toy_pascal_mt')
    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(train) == 40 and len(val) == 20
    batch = pseudo_collate([train[i] for i in range(4)])
    assert torch.stack(batch['inputs']).shape == (4, 3, 64, 64)
    for sample in batch['data_samples']:
        assert sample.gt_normals.data.shape == (3, 64, 64)
        assert sample.gt_sem_seg.data.shape == (1, 64, 64)
        assert sample.tasks == TASKS
    v = val[0]
    assert max(v['inputs'].shape[1:]) == 64
    assert v['data_samples'].gt_edge.data.shape[1:] == v['data_samples'].ori_shape
