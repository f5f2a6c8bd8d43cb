"""Expert usage of a routed backbone: which experts each task's router selects, and how much
weight the shared (or global) experts get.

The model of a config is built, a checkpoint is loaded into it, and it runs over the config's
validation set in predict mode with the backbone's routing statistics switched on
(``backbone.record_routing = True``; see :meth:`mmase.models.ASEViT.routing_stats`). For every
routed layer (a layer with a router: LoRA experts beside an FFN,
:class:`~mmase.models.adapters.MoELoRAFFN`, or on a linear,
:class:`~mmase.models.adapters.MoELoRALinear`, with more than one sparse expert or adaptively
gated shared experts; FGMoE; Task-MoE) and every task:

- **selection frequency** of sparse (routed) expert ``i``: the fraction of the task's tokens
  whose top-k included ``i``; a vector of ``N - S`` values in ``[0, 1]`` summing to ``top_k``;
- **gate masses**: the mean total gate weight per token of the shared experts
  (``shared_mass``: in ``[0, 1]`` under ASE's ``'adaptive'`` gating, ``num_shared`` under
  ``'fixed'``, 0 without shared experts), of the sparse experts (``sparse_mass``) and, for
  FGMoE, of the global expert (``global_mass``), as the layer records them;
- the **routing similarity** of two tasks: the cosine similarity of their selection
  distributions (selection frequency / top_k) at a layer, averaged over the layers where the
  router has a choice (``top_k`` smaller than the number of routed experts) among experts
  common to all tasks (not FGMoE's per-task slices). 1 = the two tasks use the experts in the
  same proportions, 0 = they never share an expert.

Outputs (:data:`EXPERT_USAGE_FILES`, in the output directory): ``expert_usage.json`` with all
numbers, and three PNG figures (:mod:`.expert_usage_figures`):
``selection_frequency.png`` (one task x expert heatmap per layer, a grid of
ViT blocks x adapted linears), ``shared_gate_mass.png`` (gate mass per layer, a line per
task) and ``task_similarity.png`` (the task x task similarity matrix).
"""
import copy
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmseg.registry import MODELS

import mmase  # noqa: F401  (registers the modules)
from mmase.engine import check_checkpoint
from mmase.engine.experiment_tasks import apply_experiment_tasks
from mmase.models.adapters import RoutingBookkeeping
from mmase.models.backbones import MultiTaskBackbone

from .expert_usage_figures import (DPI, FIGURE_FORMATS, plot_selection_frequency,
                                   plot_shared_gate_mass, plot_task_similarity)

#: Output file names in the ``--out`` directory.
EXPERT_USAGE_FILES = dict(
    json='expert_usage.json',
    selection_frequency='selection_frequency.png',
    shared_gate_mass='shared_gate_mass.png',
    task_similarity='task_similarity.png')

#: Keys of a layer's routing statistics that are not per-token gate masses.
_NON_MASS_KEYS = ('counts', 'tokens', 'selection_rate')

#: Attributes of a routed layer copied into the JSON (those it has).
_LAYER_ATTRS = ('num_experts', 'top_k', 'num_shared', 'num_sparse', 'shared_gating',
                'num_routed', 'rank',
                'gating', 'gate_norm', 'global_expert', 'task_specific_experts')


# ----------------------------------------------------------------------------------------------
# model, data, routing statistics
def build_model_and_loader(config: str, cfg_options: Optional[dict] = None
                           ) -> Tuple[Config, nn.Module, torch.utils.data.DataLoader]:
    """Build ``cfg.model`` and the validation dataloader of a config file.

    Args:
        config (str): Config file path.
        cfg_options (dict, optional): Overrides merged into the config (``--cfg-options``).

    Returns:
        tuple: ``(cfg, model, val_dataloader)``; the model has random / pretrained weights
        (load a checkpoint next).
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    apply_experiment_tasks(cfg)  # the top-level tasks, after cfg_options
    for key in ('model', 'val_dataloader'):
        if cfg.get(key) is None:
            raise KeyError(f'{config} has no `{key}`')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    loader = Runner.build_dataloader(copy.deepcopy(cfg.val_dataloader))
    return cfg, model, loader


def _router_of(module: nn.Module) -> Optional[nn.Module]:
    """The router of a routed layer (of its ``experts`` for LoRA experts beside an FFN)."""
    source = getattr(module, 'experts', module)
    return getattr(source, 'router', None) if isinstance(source, RoutingBookkeeping) else None


def find_routed_layers(backbone: nn.Module) -> Dict[str, nn.Module]:
    """The layers of ``backbone`` whose gates come from a router, by name (module order).

    The names are those of the backbone's routing statistics: a multi-task backbone's
    ``routed_layers()`` (e.g. ``blocks.0.mlp`` for experts beside the FFN), else every module
    keeping statistics (:class:`RoutingBookkeeping`). A layer counts when it has a router: plain
    LoRA (one expert, no adaptively gated shared expert) has constant gates and no router.
    """
    if isinstance(backbone, MultiTaskBackbone):
        candidates = backbone.routed_layers()
    else:
        candidates = backbone.named_modules()
    return {name: module for name, module in candidates if _router_of(module) is not None}


def _unrouted_reason(backbone_cfg: dict) -> str:
    """Why a backbone config builds no router, naming the fields."""
    reasons = []
    if 'adapter' in backbone_cfg and backbone_cfg['adapter'] is None:
        reasons.append('model.backbone.adapter=None (no routed experts; model.backbone.lora '
                       'is plain LoRA shared by the tasks, without a router)')
    elif isinstance(backbone_cfg.get('adapter'), dict):
        adapter = backbone_cfg['adapter']
        reasons.append(
            f"model.backbone.adapter (num_experts={adapter.get('num_experts', 'default')}, "
            f"num_shared={adapter.get('num_shared', 'default')}, "
            f"shared_gating={adapter.get('shared_gating', 'default')!r}) has constant gates "
            f'(plain LoRA builds no router; set num_experts > 1)')
    if backbone_cfg.get('mlp_moe') is None:
        reasons.append('model.backbone.mlp_moe is not set')
    return '; '.join(reasons) or 'no layer of it has a router'


def check_routed_backbone(model: nn.Module, cfg: Config) -> Tuple[nn.Module, Dict[str, nn.Module]]:
    """Return ``(backbone, routed layers)`` or raise a ValueError naming the config field.

    Args:
        model (nn.Module): The built model (a segmentor with a ``backbone``).
        cfg (Config): Its config (for the field names in messages).
    """
    backbone = getattr(model, 'backbone', None)
    backbone_cfg = cfg.model.get('backbone') or {}
    if backbone is None:
        raise ValueError(f"model.type={cfg.model.get('type')!r} has no backbone to analyse")
    if not isinstance(backbone, MultiTaskBackbone):
        raise ValueError(
            f"model.backbone.type={backbone_cfg.get('type')!r} records no routing statistics "
            f'(it is not a multi-task backbone): expert usage needs a routed backbone, e.g. '
            f"model.backbone.type='ASEViT' or 'TaskRoutedBackbone' with model.backbone.adapter "
            f'(num_experts > 1) or model.backbone.mlp_moe')
    layers = find_routed_layers(backbone)
    if not layers:
        raise ValueError(f"model.backbone (type={backbone_cfg.get('type')!r}) has no routed "
                         f'layer: {_unrouted_reason(backbone_cfg)}')
    return backbone, layers


def _take(data: dict, count: int) -> Tuple[dict, int]:
    """The first ``count`` samples of a collated batch ``dict(inputs, data_samples)``."""
    samples = data['data_samples']
    size = len(samples)
    if count >= size:
        return data, size
    taken = dict(data)
    taken['data_samples'] = samples[:count]
    taken['inputs'] = data['inputs'][:count]
    return taken, count


@torch.no_grad()
def collect_routing(model: nn.Module, backbone: nn.Module, dataloader,
                    max_samples: Optional[int] = None) -> Tuple[dict, int]:
    """Run ``model`` in predict mode over ``dataloader`` and return the routing statistics.

    Args:
        model (nn.Module): Segmentor (``val_step`` runs its data preprocessor and ``predict``).
        backbone (nn.Module): Its backbone, with ``record_routing`` / ``routing_stats()``.
        dataloader: Yields collated batches ``dict(inputs, data_samples)``.
        max_samples (int, optional): Stop after this many images. Default: all.

    Returns:
        tuple: ``(stats, num_samples)`` with ``stats`` as :meth:`ASEViT.routing_stats`
        (``{task: {layer: dict(counts, tokens, selection_rate, <name>_mass...)}}``).
    """
    if max_samples is not None and (isinstance(max_samples, bool)
                                    or not isinstance(max_samples, int) or max_samples < 1):
        raise ValueError(f'--max-samples={max_samples!r} must be a positive int')
    model.eval()
    previous = backbone.record_routing
    backbone.reset_routing_stats()
    backbone.record_routing = True
    seen = 0
    try:
        for data in dataloader:
            if max_samples is not None and seen >= max_samples:
                break
            if max_samples is not None:
                data, size = _take(data, max_samples - seen)
            else:
                size = len(data['data_samples'])
            model.val_step(data)
            seen += size
        stats = backbone.routing_stats()
    finally:
        backbone.record_routing = previous
    if seen == 0:
        raise ValueError('the validation dataloader yielded no sample (val_dataloader.dataset '
                         'is empty?)')
    return stats, seen


# ----------------------------------------------------------------------------------------------
# numbers
def _layer_meta(module: nn.Module, routed_experts: int) -> dict:
    meta = dict(type=type(module).__name__, routed_experts=int(routed_experts))
    source = module.experts if isinstance(getattr(module, 'experts', None), nn.Module) \
        else module  # LoRA experts beside an FFN keep their configuration on .experts
    for attr in _LAYER_ATTRS:
        value = getattr(source, attr, None)
        if isinstance(value, (bool, int, float, str)):
            meta[attr] = value
    return meta


def summarize_routing(stats: dict, layers: Dict[str, nn.Module], tasks: Sequence[str],
                      num_samples: int) -> dict:
    """Turn routing statistics into the JSON-ready summary (see the module docstring).

    Args:
        stats (dict): ``{task: {layer: dict(counts, tokens, selection_rate, *_mass)}}``.
        layers (dict): Routed layer name -> module (from :func:`find_routed_layers`).
        tasks (Sequence[str]): Task order of the outputs.
        num_samples (int): Images the statistics were recorded on.

    Returns:
        dict: ``tasks``, ``num_samples``, ``layers`` (name -> meta and per-task ``tokens``,
        ``counts``, ``selection_frequency`` (E,), gate masses), ``constant_gate_layers`` (layers
        that recorded statistics without a router: left out) and ``similarity``.
    """
    tasks = [t for t in tasks if t in stats]
    if not tasks:
        raise ValueError('no routing statistics were recorded (the backbone routed no token)')
    recorded = {layer for task in tasks for layer in stats[task]}
    summary = dict(tasks=tasks, num_samples=int(num_samples), layers={},
                   constant_gate_layers=sorted(recorded - set(layers)))
    for name, module in layers.items():
        entries = {}
        for task in tasks:
            layer_stats = stats[task].get(name)
            if layer_stats is None:
                continue
            counts = np.asarray(layer_stats['counts'], dtype=np.float64)
            tokens = int(layer_stats['tokens'])
            entry = dict(tokens=tokens, counts=counts.tolist(),
                         selection_frequency=(counts / max(tokens, 1)).tolist())
            for key, value in layer_stats.items():
                if key not in _NON_MASS_KEYS:
                    entry[key] = float(value)
            entries[task] = entry
        if entries:
            width = len(next(iter(entries.values()))['counts'])
            summary['layers'][name] = dict(_layer_meta(module, width), tasks=entries)
    if not summary['layers']:
        raise ValueError(f'none of the routed layers {sorted(layers)} recorded statistics')
    matrix, used = routing_similarity(summary)
    summary['similarity'] = dict(
        measure='cosine similarity of the selection distributions (selection_frequency / '
        'top_k), mean over the layers listed',
        tasks=tasks, layers=used,
        matrix=None if matrix is None else [[None if math.isnan(v) else float(v) for v in row]
                                            for row in matrix])
    return summary


def routing_similarity(summary: dict) -> Tuple[Optional[np.ndarray], List[str]]:
    """Task x task routing similarity from a summary's ``layers`` (see the module docstring).

    Only layers where the router chooses (``top_k`` < routed experts) and whose experts are the
    same for every task count: with every expert selected every pair of tasks would score 1,
    and with one set of experts per task (FGMoE's ``task_specific_experts=True``) expert ``i``
    of one task is not expert ``i`` of another.

    Returns:
        tuple: ``(matrix (T, T) float64 or None when no layer counts, layer names used)``;
        a pair of tasks that never met at a counted layer gets NaN.
    """
    tasks = summary['tasks']
    index = {t: i for i, t in enumerate(tasks)}
    total = np.zeros((len(tasks), len(tasks)))
    count = np.zeros((len(tasks), len(tasks)))
    used = []
    for name, layer in summary['layers'].items():
        if layer['top_k'] >= layer['routed_experts'] or layer.get('task_specific_experts'):
            continue
        used.append(name)
        vectors = {t: np.asarray(e['selection_frequency']) / layer['top_k']
                   for t, e in layer['tasks'].items()}
        for a, va in vectors.items():
            for b, vb in vectors.items():
                norm = np.linalg.norm(va) * np.linalg.norm(vb)
                if norm > 0:
                    total[index[a], index[b]] += float(va @ vb) / norm
                    count[index[a], index[b]] += 1
    if not used:
        return None, used
    with np.errstate(invalid='ignore'):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan), used


# ----------------------------------------------------------------------------------------------
# the whole analysis
def run_expert_usage(config: str, checkpoint: str, out_dir: str,
                     max_samples: Optional[int] = None, cfg_options: Optional[dict] = None,
                     device: Optional[str] = None, dpi: int = DPI, fmt: str = 'png') -> dict:
    """Build, load, run over the validation set, and write the JSON and the three figures.

    Args:
        config (str): Config file.
        checkpoint (str): Checkpoint of that config (mmengine format, loaded with
            ``weights_only=True``; refused before anything is built if unsafe).
        out_dir (str): Output directory (created).
        max_samples (int, optional): Use only the first images of the validation set.
        cfg_options (dict, optional): Config overrides.
        device (str, optional): ``'cpu'``, ``'cuda'``...; default: CUDA when available.
        dpi (int): Figure resolution (pixels per inch). Default :data:`DPI` (100).
        fmt (str): Figure format, ``'png'``, ``'pdf'`` or ``'svg'`` (file suffix follows).

    Returns:
        dict: The summary written to ``expert_usage.json`` (plus ``figures``: name ->
        ``dict(file, width, height)`` in pixels).
    """
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f'figure format {fmt!r}: choose one of {FIGURE_FORMATS}')
    check_checkpoint(checkpoint)  # missing or crafted: refused before anything is built
    cfg, model, loader = build_model_and_loader(config, cfg_options)
    backbone, layers = check_routed_backbone(model, cfg)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='current')
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model.to(device)
    stats, num_samples = collect_routing(model, backbone, loader, max_samples)
    tasks = list(getattr(model, 'tasks', None) or backbone.tasks)
    summary = dict(config=config, checkpoint=checkpoint,
                   **summarize_routing(stats, layers, tasks, num_samples))

    os.makedirs(out_dir, exist_ok=True)
    figures = {}
    for key, plot in (('selection_frequency', plot_selection_frequency),
                      ('shared_gate_mass', plot_shared_gate_mass),
                      ('task_similarity', plot_task_similarity)):
        name = osp.splitext(EXPERT_USAGE_FILES[key])[0] + f'.{fmt}'
        width, height = plot(summary, osp.join(out_dir, name), dpi)
        figures[key] = dict(file=name, width=width, height=height)
    summary['figures'] = figures
    with open(osp.join(out_dir, EXPERT_USAGE_FILES['json']), 'w') as f:
        json.dump(summary, f, indent=1)
    return summary
