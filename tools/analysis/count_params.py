"""Print parameter counts (total, trainable, adapters, LoRA, routers) and the expert
configuration ``N/k/S/r`` of the models of configs.

Builds ``cfg.model`` from each config (mmase imported, default scope from the config or
'mmseg'), without loading any checkpoint into it beyond what the config's modules do at build
(e.g. ``ASEViT(pretrained=...)``). Columns:

- ``total``: every parameter.
- ``trainable``: ``requires_grad`` parameters after build (frozen base weights excluded).
- ``adapters``: expert weights: the parameters a module lists in its
  ``expert_parameter_names`` (LoRA ``lora_A``/``lora_B``; the MLP experts of FGMoE and
  Task-MoE), parameters named ``lora_*``, and any other parameter of a module wrapping a
  ``base_layer`` (the base layer's own weights and routers excluded). Plain LoRA is included.
- ``lora``: the part of ``adapters`` that is plain LoRA (LoRA experts without a router, shared
  by all tasks); ``adapters - lora`` are the routed experts.
- ``routers``: routing parameters: task routers and task embeddings (names containing
  ``router``, ``task_embedding`` or ``task_embed``).
- ``experts``: the routed LoRA experts' configurations in the paper's ``N/k/S/r`` notation
  (``N`` experts including the ``S`` shared ones, top-``k`` of the ``N - S`` sparse ones, rank
  ``r``), e.g. ``16/3/1/4``; ``-`` when there are none.

Example::

    python tools/analysis/count_params.py \\
        configs/ase/ase_vit-s16_16-3-1-4_40k_pascal-mt-512x512.py \\
        configs/ase/ase_vit-s16_64-12-4-1_40k_pascal-mt-512x512.py \\
        --cfg-options model.backbone.pretrained=None
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Sequence

import torch.nn as nn
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from prettytable import PrettyTable

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a clone
import mmase  # noqa: E402,F401  (registers the modules)
from mmseg.registry import MODELS  # noqa: E402

from mmase.engine.experiment_tasks import apply_experiment_tasks  # noqa: E402
from mmase.models.adapters import LoRAExperts  # noqa: E402

COLUMNS = ('total', 'trainable', 'adapters', 'lora', 'routers')
ROUTING_NAMES = ('router', 'task_embedding', 'task_embed')


def count_parameters(model: nn.Module) -> Dict[str, object]:
    """Parameter counts of ``model`` by the categories in the module docstring (ints), and
    ``experts``, the routed experts' ``N/k/S/r`` (comma-separated when they differ)."""
    adapter_names, lora_names, notations = set(), set(), []
    for prefix, module in model.named_modules():
        dot = f'{prefix}.' if prefix else ''
        if isinstance(module, LoRAExperts):
            if module.router is None:
                lora_names.update(dot + n for n in ('lora_A', 'lora_B'))
            elif module.notation() not in notations:
                notations.append(module.notation())
        for name in getattr(module, 'expert_parameter_names', ()):
            adapter_names.add(dot + name)
        if isinstance(getattr(module, 'base_layer', None), nn.Module):
            for name, _ in module.named_parameters():
                if not name.startswith('base_layer.'):
                    adapter_names.add(f'{prefix}.{name}' if prefix else name)
    counts = dict.fromkeys(COLUMNS, 0)
    for name, param in model.named_parameters():
        counts['total'] += param.numel()
        if param.requires_grad:
            counts['trainable'] += param.numel()
        if any(part in name for part in ROUTING_NAMES):
            counts['routers'] += param.numel()
        elif 'lora_' in name or name in adapter_names:
            counts['adapters'] += param.numel()
            if name in lora_names:
                counts['lora'] += param.numel()
    counts['experts'] = ', '.join(notations) or '-'
    return counts


def build_model(config: str, cfg_options: dict = None) -> nn.Module:
    """Build ``cfg.model`` of ``config`` (a path) with ``cfg_options`` merged in."""
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    apply_experiment_tasks(cfg)  # the top-level tasks, after --cfg-options
    if 'model' not in cfg:
        raise KeyError(f'{config} has no `model`')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return MODELS.build(cfg.model)


def main(argv: Sequence[str] = None) -> List[Dict]:
    parser = argparse.ArgumentParser(description='Count model parameters of configs')
    parser.add_argument('configs', nargs='+', help='config files')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of every config, key=value (xxx=yyy format)')
    parser.add_argument('--json', action='store_true', help='print JSON rows instead')
    args = parser.parse_args(argv)

    rows = []
    for config in args.configs:
        counts = count_parameters(build_model(config, args.cfg_options))
        rows.append(dict(config=config, **counts))
    if args.json:
        print(json.dumps(rows))
        return rows
    table = PrettyTable(['config', 'experts', *COLUMNS, 'trainable %'])
    table.align = 'r'
    table.align['config'] = 'l'
    for row in rows:
        share = 100.0 * row['trainable'] / max(row['total'], 1)
        table.add_row([osp.basename(row['config']), row['experts']] +
                      [f'{row[c]:,}' for c in COLUMNS] +
                      [f'{share:.2f}'])
    print(table)
    return rows


if __name__ == '__main__':
    main()
