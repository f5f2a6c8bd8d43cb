"""Tasks stated once per experiment: one top-level ``tasks`` line changes the model, its routers
and heads, the datasets and the evaluator (``mmase.engine.experiment_tasks``)."""
import importlib.util
import json
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmase.engine import MultiTaskRunner, apply_experiment_tasks
from mmase.models.adapters.routers import TaskRouter

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = osp.join(ROOT, 'configs', 'toy', 'ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py')
REAL = osp.join(ROOT, 'configs', 'ase', 'ase_vit-s16_16-3-1-4_40k_pascal-mt-512x512.py')
TWO = ('semseg', 'normals')
PASCAL = 'PascalContextMTDataset'


def routers_per_layer(backbone) -> list:
    """The number of task routers (the router weight's first axis) in every routed layer."""
    return [[m.weight.shape[0] for m in layer.modules() if isinstance(m, TaskRouter)]
            for _, layer in backbone.routed_layers()]


def leaf(tmp_path, base: str, extra: str = '') -> Config:
    """A leaf config of ``base`` whose only change is its task tuple (plus ``extra``)."""
    path = tmp_path / 'two_tasks.py'
    path.write_text(f'_base_ = [{base!r}]\ntasks = {TWO!r}\n{extra}')
    return Config.fromfile(str(path))


def test_fills_absent_fields_walks_wrappers_and_keeps_explicit():
    cfg = Config(dict(
        tasks=['semseg', 'sal'],
        model=dict(type='MultiTaskEncoderDecoder'),
        train_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[
            dict(type=PASCAL),
            dict(type='RepeatDataset', times=2, dataset=dict(type=PASCAL, tasks=('sal', )))])),
        val_dataloader=dict(dataset=dict(type=PASCAL)),
        val_evaluator=[dict(type='MultiTaskMetric'), dict(type='IoUMetric')],
        test_evaluator=dict(type='Evaluator', metrics=[dict(type='MultiTaskMetric')])))
    assert apply_experiment_tasks(cfg) is cfg
    both = ('semseg', 'sal')
    assert cfg.model.tasks == both
    concat = cfg.train_dataloader.dataset
    assert 'tasks' not in concat  # mmengine's ConcatDataset takes no tasks
    assert concat.datasets[0].tasks == both
    assert 'tasks' not in concat.datasets[1]
    assert concat.datasets[1].dataset.tasks == ('sal', )  # explicit wins
    assert cfg.val_dataloader.dataset.tasks == both
    assert cfg.val_evaluator[0].tasks == both and 'tasks' not in cfg.val_evaluator[1]
    assert cfg.test_evaluator.metrics[0].tasks == both
    assert 'test_dataloader' not in cfg


def test_without_top_level_tasks_nothing_changes_and_bad_tasks_are_named():
    cfg = Config(dict(model=dict(type='MultiTaskEncoderDecoder'),
                      val_evaluator=dict(type='MultiTaskMetric')))
    apply_experiment_tasks(cfg)
    assert 'tasks' not in cfg.model and 'tasks' not in cfg.val_evaluator
    with pytest.raises(ValueError, match=r"config field tasks must be a tuple of task names"):
        apply_experiment_tasks(Config(dict(tasks='semseg')))


def test_custom_tasks_stated_once_reach_every_field_that_takes_them():
    declared = [dict(type='DenseTask', name='extra', kind='extra_kind', channels=1)]
    own = [dict(type='DenseTask', name='other', kind='other_kind', channels=1)]
    cfg = Config(dict(
        custom_tasks=declared,
        model=dict(type='MultiTaskEncoderDecoder'),
        train_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[
            dict(type=PASCAL), dict(type='NYUDMTDataset', custom_tasks=own)])),
        val_evaluator=[dict(type='MultiTaskMetric'), dict(type='IoUMetric')]))
    apply_experiment_tasks(cfg)
    assert cfg.model.custom_tasks == declared
    concat = cfg.train_dataloader.dataset
    assert 'custom_tasks' not in concat  # mmengine's ConcatDataset takes none
    assert concat.datasets[0].custom_tasks == declared
    assert concat.datasets[1].custom_tasks == own  # explicit wins
    assert cfg.val_evaluator[0].custom_tasks == declared
    assert 'custom_tasks' not in cfg.val_evaluator[1]
    assert 'tasks' not in cfg.model  # no top-level tasks: only the declarations move
    with pytest.raises(ValueError, match=r'config field custom_tasks must be a list of task '
                       r'declarations'):
        apply_experiment_tasks(Config(dict(custom_tasks=dict(type='DenseTask', name='x'))))


def test_model_without_tasks_names_the_fix():
    init_default_scope('mmseg')
    cfg = Config.fromfile(TOY)
    with pytest.raises(ValueError, match=r'model.tasks is not set.*tasks = \(.*apply_experiment'):
        MODELS.build(cfg.model)


def test_one_line_override_on_the_toy_config_trains_and_validates(tmp_path):
    torch.set_num_threads(1)
    cfg = leaf(tmp_path, TOY)
    cfg.merge_from_dict({
        'work_dir': str(tmp_path / 'work'), 'visualizer.name': 'test_experiment_tasks_vis',
        'model.backbone.arch.num_layers': 2, 'model.backbone.out_indices': [0, 1],
        'train_cfg.max_iters': 1, 'train_cfg.val_interval': 1, 'param_scheduler': [],
        'default_hooks.checkpoint.interval': 1,
        'train_dataloader.batch_size': 2, 'val_dataloader.dataset.indices': [2, 4]})
    torch.manual_seed(0)
    runner = MultiTaskRunner.from_cfg(cfg)
    assert 'tasks' not in cfg.model  # from_cfg works on a copy
    model = runner.model
    assert model.tasks == TWO and model.backbone.tasks == TWO
    assert list(model.decode_heads) == list(TWO)
    assert routers_per_layer(model.backbone) == [[2], [2]]  # the 2 blocks' FFN experts
    sample = runner.train_dataloader.dataset[0]['data_samples']
    assert sample.gt_sem_seg is not None and 'gt_normals' in sample
    for absent in ('gt_human_parts', 'gt_sal', 'gt_edge'):
        assert absent not in sample, absent
    (metric, ) = runner.val_evaluator.metrics
    assert metric.tasks == TWO
    runner.train()
    metrics = json.loads((tmp_path / 'work' / 'metrics_val_iter_1.json').read_text())
    tasks = {key.split('/')[0] for key in metrics} - {'multitask'}
    assert tasks == set(TWO), sorted(metrics)
    assert 'multitask/delta_m' in metrics  # the five-task STL reference serves any subset


def test_one_line_override_on_a_real_protocol_config(tmp_path):
    cfg = apply_experiment_tasks(leaf(tmp_path, REAL))
    assert cfg.model.tasks == TWO and 'tasks' not in cfg.model.backbone
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[name].dataset.tasks == TWO, name
    assert cfg.val_evaluator.tasks == TWO and cfg.test_evaluator.tasks == TWO
    # built small (no pretrained file, no data): two routers in every routed layer, two heads
    cfg.model.backbone.update(arch=dict(embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=6.0),
                              out_indices=(0, 1), img_size=32)
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    assert model.backbone.tasks == TWO and list(model.decode_heads) == list(TWO)
    assert routers_per_layer(model.backbone) == [[2], [2]]


def test_cfg_options_of_tools_train_reach_every_field(monkeypatch):
    spec = importlib.util.spec_from_file_location('mmase_tools_train',
                                                  osp.join(ROOT, 'tools', 'train.py'))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    monkeypatch.setattr(sys, 'argv',
                        ['train.py', TOY, '--cfg-options', "tasks=('semseg','normals')"])
    args = train.parse_args()
    cfg = Config.fromfile(TOY)
    cfg.merge_from_dict(args.cfg_options)
    apply_experiment_tasks(cfg)
    assert cfg.model.tasks == TWO and cfg.train_dataloader.dataset.tasks == TWO
    assert cfg.val_dataloader.dataset.tasks == TWO and cfg.val_evaluator.tasks == TWO


def test_runner_type_builds_the_multitask_runner_as_mmseg_train_does(tmp_path):
    from mmengine.registry import RUNNERS  # mmseg's tools/train.py: RUNNERS.build(cfg)
    cfg = leaf(tmp_path, TOY)
    cfg.merge_from_dict({'work_dir': str(tmp_path / 'work'),
                         'visualizer.name': 'test_experiment_tasks_runner_type',
                         'model.backbone.arch.num_layers': 2, 'model.backbone.out_indices': [0, 1]})
    runner = RUNNERS.build(cfg)
    assert type(runner) is MultiTaskRunner
    assert runner.model.tasks == TWO and list(runner.model.decode_heads) == list(TWO)


def test_multi_process_runs_get_the_buffer_sync(monkeypatch):
    """mmseg's own train.py (RUNNERS.build) gets what mmase's tools add to a multi-process run:
    every rank validates and saves with rank 0's buffers."""
    from mmengine.runner import Runner
    monkeypatch.setattr(Runner, 'from_cfg', classmethod(lambda cls, cfg: cfg))  # the config only
    for launcher, expected in (('pytorch', True), ('none', False)):
        cfg = Config.fromfile(TOY)
        cfg.launcher = launcher
        built = MultiTaskRunner.from_cfg(cfg)
        types = [dict(h).get('type') for h in built.get('custom_hooks') or []]
        assert ('SyncRankBuffersHook' in types) is expected, (launcher, types)
        assert built.model.tasks == cfg.tasks  # and the tasks, as always
