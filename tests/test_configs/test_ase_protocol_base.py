"""The ASE protocol's _base_ files (224x224 PASCAL-Context, 40 epochs): what the pipelines make of
a toy image, the schedule's numbers, and one tiny epoch-based run composed from them."""
import json
import os.path as osp
import sys

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

import mmase  # noqa: F401  (registers the datasets and transforms)

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(__file__)), 'test_tools'))
from tool_helpers import ROOT, TOY_DATA, run  # noqa: E402

BASE = osp.join(ROOT, 'configs', '_base_')
DATASET = osp.join(BASE, 'datasets', 'pascal_context_mt_224x224.py')
SCHEDULE = osp.join(BASE, 'schedules', 'schedule_40e.py')
RUNTIME = osp.join(BASE, 'default_runtime_epoch.py')


def build(loader_cfg):
    init_default_scope('mmseg')
    return DATASETS.build(dict(loader_cfg.dataset, data_root=TOY_DATA))


def test_train_and_test_pipelines_on_toy_images():
    cfg = Config.fromfile(DATASET)
    assert cfg.train_dataloader.sampler.type == 'DefaultSampler'  # epochs, not InfiniteSampler
    assert cfg.train_dataloader.batch_size == 16
    train = build(cfg.train_dataloader)
    np.random.seed(0)
    for index in range(4):
        sample = train[index]
        assert tuple(sample['inputs'].shape) == (3, 224, 224)
        data = sample['data_samples']
        for field in ('gt_sem_seg', 'gt_sal', 'gt_edge', 'gt_human_parts'):
            assert tuple(data.get(field).data.shape[-2:]) == (224, 224), field
        assert data.gt_normals.data.shape == (3, 224, 224)
    test = build(cfg.val_dataloader)
    sample = test[0]
    h, w = sample['data_samples'].ori_shape
    assert tuple(sample['inputs'].shape) == (3, 224, 224)  # aspect ratio not kept
    assert tuple(sample['data_samples'].gt_sem_seg.data.shape[-2:]) == (h, w) != (224, 224)


def test_schedule_numbers():
    cfg = Config.fromfile(SCHEDULE)
    assert cfg.train_cfg == dict(type='EpochBasedTrainLoop', max_epochs=40, val_begin=1,
                                 val_interval=5)
    assert cfg.param_scheduler[0].end == 1 and cfg.param_scheduler[1].end == 40
    assert all(s.convert_to_iter_based for s in cfg.param_scheduler)
    assert cfg.default_hooks.checkpoint.by_epoch and cfg.default_hooks.checkpoint.interval == 5
    assert Config.fromfile(RUNTIME).log_processor == dict(by_epoch=True)


def test_one_tiny_epoch_run_composed_from_the_bases(tmp_path):
    """Toy model at 224x224 (2 blocks), 4 toy images, batch 2, 2 epochs of 2 iterations,
    validation at epoch 2 (the last) with Δm (against the toy reference's numbers: only the
    plumbing is tested)."""
    config = tmp_path / 'ase_protocol_toy.py'
    config.write_text(f'''
_base_ = [{osp.join(BASE, 'models', 'ase_vit-tiny_toy_pascal_mt.py')!r}, {DATASET!r},
          {osp.join(BASE, 'stl_reference', 'toy_pascal_mt.py')!r}, {RUNTIME!r}, {SCHEDULE!r}]
data_root = {TOY_DATA!r}
model = dict(data_preprocessor=dict(size=(224, 224)),
             backbone=dict(img_size=224, arch=dict(num_layers=2), out_indices=(0, 1)))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, indices=4))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, indices=5))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=2, val_interval=2)
param_scheduler = [dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
                        convert_to_iter_based=True),
                   dict(type='PolyLR', eta_min=1e-6, power=0.9, by_epoch=True, begin=1, end=2,
                        convert_to_iter_based=True)]
val_evaluator = dict(type='MultiTaskMetric', tasks={{{{_base_.tasks}}}}, protocol='astmt',
                     main_metrics=dict(sal='mIoU'), stl_reference={{{{_base_.stl_reference}}}})
test_evaluator = val_evaluator
randomness = dict(seed=0)
''')
    work_dir = tmp_path / 'work'
    proc = run(['tools/train.py', str(config), '--work-dir', str(work_dir)])
    assert 'Epoch(train) [2][2/2]' in proc.stdout + proc.stderr
    assert (work_dir / 'epoch_2.pth').is_file()
    metrics = [json.load(open(p)) for p in work_dir.glob('metrics_val_*.json')]
    assert len(metrics) == 1 and np.isfinite(metrics[0]['multitask/delta_m'])
    assert 'sal/mIoU_pooled' in metrics[0] and 'normals/median' in metrics[0]  # astmt
