"""Every experiment config trains one step and validates through mmengine's Runner, shrunk.

Parametrised over every ``.py`` under ``configs/`` outside ``_base_``: a config added later
(FGMoE, Task-MoE, ...) is covered without touching this file. Each config is loaded, shrunk by
:func:`shrink_config` (a generic walk of the config, see there: tiny ViT, small heads, the toy
dataset of the same family, 64 px crops, batch 2, one iteration, validation on 2 images, no
pretrained weights), then ``MultiTaskRunner.from_cfg(cfg).train()`` runs one training step and
the validation loop at its end (the test step: the model's predict path and the config's evaluator).
The metrics the evaluator saved (``metrics_val_iter_1.json``) must hold every task's main metric
and Δm exactly when the config gives an STL reference.
"""
import glob
import importlib.util
import json
import math
import os
import os.path as osp
import uuid

import pytest
import torch
from mmengine.config import Config, ConfigDict

from mmase.engine import MultiTaskRunner, apply_experiment_tasks
from mmase.engine.experiment_tasks import resolved_tasks
from mmase.evaluation import main_metric_key
from mmase.models.backbones import ARCH_SETTINGS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(ROOT, 'configs')

#: Dataset type -> the toy dataset of its family (same layout and annotation lists).
TOY_ROOTS = {
    'PascalContextMTDataset': osp.join(ROOT, 'data', 'toy_pascal_mt'),
    'NYUDv2MTDataset': osp.join(ROOT, 'data', 'toy_nyud_mt'),
}

#: Dataset type -> validation images of the toy set used by the smoke runs: each must have
#: labelled pixels for every task (the first toy PASCAL val images show no person parts).
VAL_INDICES = {
    'PascalContextMTDataset': [2, 4],
    'NYUDv2MTDataset': [0, 1],
}

#: The shrunk ViT (ASEViT ``arch`` dict). MLP hidden 192 = 2^6 * 3: the expert counts that
#: split ViT-S/B hidden sizes (1536 = 2^9 * 3, 3072 = 2^10 * 3) into slices up to 192 divide it;
#: other ``mlp_moe.num_experts`` values widen it (see :func:`_mlp_ratio`).
TINY_ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=6.0)
TINY_IMG, TINY_PATCH, TINY_CROP, HEAD_CHANNELS = 64, 16, (64, 64), 16
#: mmseg-ViT-style architecture keys, set directly on the backbone when present.
TINY_FLAT_ARCH = dict(embed_dims=32, num_layers=2, num_heads=2)

#: Named ASEViT architectures -> number of blocks (to remap block indices).
ARCH_LAYERS = {name: settings['num_layers'] for name, settings in ARCH_SETTINGS.items()}


def experiment_configs():
    """Every config file under configs/ except the _base_ tree, relative to configs/."""
    paths = glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
    return sorted(osp.relpath(p, CONFIG_DIR) for p in paths
                  if '_base_' not in osp.relpath(p, CONFIG_DIR).split(os.sep))


# ------------------------------------------------------------------------------------------------
# shrinking
def _walk(node, fn, path='cfg'):
    """Call ``fn(dict_node, path)`` on every dict inside ``node`` (depth first, parents first)."""
    if isinstance(node, dict):
        fn(node, path)
        for key, value in list(node.items()):
            _walk(value, fn, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            _walk(value, fn, f'{path}[{index}]')


def _num_layers(backbone: dict) -> int:
    arch = backbone.get('arch')
    if isinstance(arch, dict):
        return int(arch['num_layers'])
    if isinstance(arch, str):
        if arch not in ARCH_LAYERS:
            raise ValueError(f'shrink: unknown backbone arch {arch!r}; add it to ARCH_LAYERS')
        return ARCH_LAYERS[arch]
    if 'num_layers' in backbone:
        return int(backbone['num_layers'])
    raise ValueError('shrink: cannot tell the number of blocks of the backbone '
                     f'{backbone.get("type")!r} (no arch / num_layers)')


def _remap_blocks(indices, old_layers: int, new_layers: int):
    """Block indices of an ``old_layers`` ViT -> the blocks at the same relative depth."""
    if indices is None:
        return None
    single = isinstance(indices, int)
    indices = [indices] if single else list(indices)
    mapped = sorted({(i % old_layers) * new_layers // old_layers for i in indices})
    return mapped[0] if single else tuple(mapped)


def _mlp_ratio(backbone: dict) -> float:
    """``TINY_ARCH``'s MLP ratio, widened so that every ``num_experts`` of an MLP-level expert
    layer (``mlp_moe``, whose experts may slice the hidden units) divides the hidden size."""
    hidden = int(TINY_ARCH['embed_dims'] * TINY_ARCH['mlp_ratio'])
    counts = []
    _walk(backbone.get('mlp_moe'), lambda node, path: counts.append(node.get('num_experts')))
    for count in counts:
        if isinstance(count, int) and count > 0:
            hidden = math.lcm(hidden, count)
    return hidden / TINY_ARCH['embed_dims']


def _shrink_vit(backbone: dict) -> list:
    """Tiny ViT in place; returns the channel width of each feature map it outputs."""
    old_layers = _num_layers(backbone)
    new_layers = TINY_ARCH['num_layers']
    if 'arch' in backbone:
        backbone['arch'] = ConfigDict(TINY_ARCH, mlp_ratio=_mlp_ratio(backbone))
    else:
        backbone.update(TINY_FLAT_ARCH)
    for key in ('img_size', ):
        if key in backbone:
            backbone[key] = TINY_IMG
    if 'patch_size' in backbone:
        backbone['patch_size'] = TINY_PATCH
    out = backbone.get('out_indices', -1)
    num_out = 1 if isinstance(out, int) else min(len(out), new_layers)
    backbone['out_indices'] = tuple(range(new_layers))[-num_out:]

    def remap(node, path):  # adapter.blocks, mlp_moe.blocks, ...: same relative depth
        if 'blocks' in node and node is not backbone:
            node['blocks'] = _remap_blocks(node['blocks'], old_layers, new_layers)

    _walk(backbone, remap)
    return [TINY_ARCH['embed_dims']] * num_out


#: Backbone ``type`` -> function shrinking that backbone config in place and returning the
#: channel width of each feature map it outputs (see :func:`shrink_backbone`). The ViTs are
#: the default; another family (Swin, MiT, a wrapper around them, ...) brings its own in a
#: ``shrink_<family>.py`` module beside this file, whose ``register(shrinkers, shrink_backbone)``
#: adds entries (``shrink_backbone`` lets a wrapper shrink the backbone it holds), so adding a
#: family touches no shared code.
BACKBONE_SHRINKERS = {}


def shrink_backbone(backbone: dict) -> list:
    """Shrink ``backbone`` in place with its family's shrinker; channel width per output."""
    return BACKBONE_SHRINKERS.get(backbone.get('type'), _shrink_vit)(backbone)


def _load_family_shrinkers() -> None:
    for path in sorted(glob.glob(osp.join(osp.dirname(osp.abspath(__file__)), 'shrink_*.py'))):
        name = osp.splitext(osp.basename(path))[0]
        spec = importlib.util.spec_from_file_location(f'mmase_tests_{name}', path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.register(BACKBONE_SHRINKERS, shrink_backbone)


_load_family_shrinkers()


def _shrink_head(head: dict, channels: list) -> None:
    """A decode head reading the maps of widths ``channels``, ``HEAD_CHANNELS`` wide."""
    if 'in_channels' not in head:
        return
    if isinstance(head['in_channels'], (list, tuple)):
        head['in_channels'] = list(channels)
        head['in_index'] = list(range(len(channels)))
    else:
        head['in_channels'] = channels[-1]
        head['in_index'] = len(channels) - 1
    if 'channels' in head:
        head['channels'] = HEAD_CHANNELS


def _shrink_pipeline(pipeline) -> None:
    for transform in pipeline:
        for key in ('crop_size', 'scale', 'size'):
            if key in transform:
                transform[key] = TINY_CROP


def shrink_config(cfg: Config, work_dir: str) -> Config:
    """Shrink an experiment config in place to a seconds-long CPU run.

    - model: every ``pretrained`` -> None; the backbone -> ``TINY_ARCH`` (2 blocks of 32
      channels, MLP hidden size divisible by any ``mlp_moe.num_experts``), ``img_size`` 64,
      patch 16, ``out_indices`` the last ``min(n, 2)`` blocks (``n`` = the original number of
      outputs), block-index lists (``adapter.blocks``, ...) remapped to
      the same relative depth; every decode head (``decode_heads`` / ``decode_head`` /
      ``auxiliary_head``) reads the new maps (``in_channels`` / ``in_index``) with 16 channels;
      ``data_preprocessor.size`` 64x64.
    - data: the toy dataset of the config's family (``TOY_ROOTS``), every crop / resize / pad
      size 64x64, batch 2, no workers; training samples drawn from 4 images, validation on the 2
      images of ``VAL_INDICES``.
    - schedule: 1 iteration (epoch-based schedules too, at a constant LR), validation and
      checkpoint after it; logs every iteration.
    - evaluator: ``edge_eval_ids`` dropped (an id list of the real dataset).
    """
    model = cfg.model

    def no_pretrained(node, path):
        if 'pretrained' in node:
            node['pretrained'] = None
        if 'task_addition' in node:  # its checkpoint is not of the shrunk model
            node['task_addition'] = None
        if isinstance(node.get('init_cfg'), dict) and node['init_cfg'].get('type') == 'Pretrained':
            node['init_cfg'] = None

    _walk(model, no_pretrained)
    channels = shrink_backbone(model.backbone)
    heads = []
    for key in ('decode_heads', 'decode_head', 'auxiliary_head'):
        value = model.get(key)
        if isinstance(value, dict) and 'type' not in value:  # task -> head
            heads.extend(value.values())
        elif isinstance(value, dict):
            heads.append(value)
        elif isinstance(value, (list, tuple)):
            heads.extend(value)
    assert heads, 'shrink: the model has no decode head'
    for head in heads:
        _shrink_head(head, channels)
    if model.get('data_preprocessor', {}).get('size') is not None:
        model.data_preprocessor.size = TINY_CROP

    loaders = []
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if loader is None:
            continue
        loader.batch_size = 2 if split == 'train' else 1
        loader.num_workers = 0
        loader.persistent_workers = False
        dataset = loader.dataset
        if dataset.type not in TOY_ROOTS:
            raise ValueError(f'shrink: no toy dataset for {dataset.type!r}; add it to TOY_ROOTS')
        dataset.data_root = TOY_ROOTS[dataset.type]
        dataset.indices = 4 if split == 'train' else VAL_INDICES[dataset.type]
        dataset.serialize_data = False  # its gc.collect() costs seconds in a long test process
        _shrink_pipeline(dataset.pipeline)
        loaders.append(loader)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=1, val_interval=1)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 1
    # an epoch-based schedule (the ASE protocol's 40 epochs) runs on the same iteration clock
    cfg.default_hooks.checkpoint.by_epoch = False
    cfg.default_hooks.logger.log_metric_by_epoch = False
    cfg.log_processor = dict(by_epoch=False)
    if any(s.get('by_epoch', True) for s in cfg.get('param_scheduler', None) or []):
        cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0,
                                    end=1)]
    for key in ('val_evaluator', 'test_evaluator'):
        evaluator = cfg.get(key)
        if isinstance(evaluator, dict):
            evaluator.pop('edge_eval_ids', None)
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    # the visualizer is a named global instance: one name per run, so runs never share one
    cfg.visualizer.name = f'visualizer_{uuid.uuid4().hex}'
    cfg.randomness = dict(seed=0)
    return cfg


# ------------------------------------------------------------------------------------------------
# tests
@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is fastest, and several of them thrash on a busy
    2-core machine (a step goes from ~0.5 s to ~5 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def unformatted_config_text(monkeypatch):
    """mmengine formats the config text with yapf whenever it logs or dumps it (config file,
    checkpoint meta, visualizer): seconds per run on 2 cores, most of a smoke run. Keep the text
    unformatted (still valid Python) during the runs."""
    import mmengine.config.config as config_module
    monkeypatch.setattr(config_module, 'FormatCode', lambda text, **kwargs: (text, None))


def test_configs_are_found():
    configs = experiment_configs()
    folders = {osp.dirname(c) for c in configs}
    assert {'toy', 'baselines', 'ase', 'nyud'} <= folders, folders
    assert 'toy/ase_vit-tiny_16-3-1-4_300it_toy-nyud-mt-64x64.py' in configs


def test_shrink_remaps_blocks_and_heads():
    cfg = Config.fromfile(
        osp.join(CONFIG_DIR, 'ase', 'ase_vit-s16_16-3-1-4_40k_pascal-mt-512x512.py'))
    cfg.model.backbone.adapter.blocks = [0, 6, 11]
    cfg.model.backbone.pretrained = 'nowhere.pth'
    shrink_config(cfg, '/tmp/unused')
    backbone = cfg.model.backbone
    assert backbone.arch == TINY_ARCH and backbone.out_indices == (0, 1)
    backbone.mlp_moe = dict(type='FGMoE', num_experts=40, blocks=(1, 3, 5, 7, 9, 11))
    channels = shrink_backbone(backbone)  # a second shrink: from 2 blocks to 2 blocks
    assert channels == [32, 32] and backbone.mlp_moe.blocks == (1, )
    assert int(32 * backbone.arch.mlp_ratio) == 960  # lcm(192, 40)
    assert backbone.adapter.blocks == (0, 1) and backbone.pretrained is None
    for head in cfg.model.decode_heads.values():
        assert head.in_channels == [32, 32] and head.in_index == [0, 1]
    assert cfg.train_dataloader.dataset.data_root.endswith('toy_pascal_mt')
    assert cfg.val_dataloader.dataset.indices == VAL_INDICES['PascalContextMTDataset']


@pytest.mark.parametrize('config', experiment_configs())
def test_config_trains_and_validates(config, tmp_path, unformatted_config_text):
    cfg = apply_experiment_tasks(Config.fromfile(osp.join(CONFIG_DIR, config)))
    tasks = tuple(cfg.tasks)  # stated once: the model, datasets and evaluators follow
    resolved = resolved_tasks(cfg)  # the backbone: the segmentor's hand-off
    assert {field for field, value in resolved.items() if value != tasks} == set(), resolved
    assert {'model', 'model.backbone', 'train_dataloader.dataset', 'val_dataloader.dataset',
            'test_dataloader.dataset', 'val_evaluator', 'test_evaluator'} <= set(resolved)
    evaluator = cfg.val_evaluator
    assert evaluator.type == 'MultiTaskMetric', config
    assert sorted(cfg.model.decode_heads) == sorted(tasks), config
    reference = evaluator.get('stl_reference')

    shrink_config(cfg, str(tmp_path))
    torch.manual_seed(0)
    runner = MultiTaskRunner.from_cfg(cfg)
    runner.train()

    assert osp.isfile(tmp_path / 'iter_1.pth')
    metrics = json.loads((tmp_path / 'metrics_val_iter_1.json').read_text())
    for task in tasks:
        value = metrics[main_metric_key(task)]
        assert isinstance(value, (int, float)) and math.isfinite(value), (task, value)
    assert ('multitask/delta_m' in metrics) == (reference is not None)
