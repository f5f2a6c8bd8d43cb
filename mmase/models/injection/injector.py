"""The injector: task-routed experts, plain LoRA, FFN-level experts and task embeddings into
any backbone with a layout, in one loop (PEFT style: the base is built plain, the named
modules are wrapped by reference, only adapters train).

In this order (so that no wrapper hides another's target): plain LoRA on the named linears,
FFN-level expert layers replacing chosen MLPs, task-routed experts beside the FFNs (or on the
named linears), the task embedding at the layout's token module. Every routed layer reads the
task index from the host's :class:`~.task_context.TaskContext`. The base is frozen by the host
(:class:`~mmase.models.backbones.MultiTaskBackbone`), which trains what :func:`inject` reports.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Set, Tuple

import torch
import torch.nn as nn

from ..adapters import LoRAExperts, MoELoRAFFN, MoELoRALinear
from ..adapters.lora import LoRAMultiheadAttention
from .adapter_configs import AdapterConfigs
from .layout import FFNSite, Layout, LinearSite
from .task_context import TaskContext
from .wrap import wrap_modules


@dataclass(frozen=True)
class RoutedFamily:
    """Routed layers whose router losses are reported together: ``loss_lb{suffix}_<task>``
    (weight ``load_balance_weight``) and ``loss_mi{suffix}`` (``mi_loss_weight``); ``names``
    relative to the multi-task backbone."""
    suffix: str
    names: Tuple[str, ...]
    load_balance_weight: float = 0.0
    mi_loss_weight: float = 0.0


@dataclass
class Injection:
    """What :func:`inject` did; names relative to the root it was given."""
    lora_names: List[str] = field(default_factory=list)
    mlp_moe_names: List[str] = field(default_factory=list)
    adapter_names: List[str] = field(default_factory=list)
    #: parameters (relative to root) of the FFN-level layers that train
    layer_trainable: Set[str] = field(default_factory=set)
    #: replaced MLP name -> (fc1, fc2, act) it was built from (to rebuild after loading)
    replaced_mlps: Dict[str, tuple] = field(default_factory=dict)

    def families(self, prefix: str, adapter_weights: Tuple[float, float],
                 mlp_weights: Tuple[float, float]) -> Tuple[RoutedFamily, ...]:
        """The routed families, names under ``prefix`` (the root's name in the host)."""
        return (RoutedFamily('', tuple(prefix + n for n in self.adapter_names), *adapter_weights),
                RoutedFamily('_mlp', tuple(prefix + n for n in self.mlp_moe_names),
                             *mlp_weights))


def _sites(layout: Layout, cfgs: AdapterConfigs) -> Dict[str, list]:
    """Where each adapter goes (checked: every site exists, no module is wrapped twice)."""
    sites = dict(lora=[], mlp_moe=[], adapter=[])
    if cfgs.lora is not None:
        for block in layout.select_blocks(cfgs.lora.blocks, cfgs.lora.stages, 'lora'):
            for target in cfgs.lora.targets:
                site = layout.linear(block, target)
                if site is None:
                    raise ValueError(f'lora.targets: {layout.name} block {block} has no '
                                     f'{target!r} linear the layout knows')
                sites['lora'].append(site)
    if cfgs.mlp_moe is not None:
        for block in layout.select_blocks(cfgs.mlp_moe.blocks, cfgs.mlp_moe.stages, 'mlp_moe'):
            mlp = layout.mlp(block)
            if mlp is None:
                raise ValueError(f'mlp_moe: {layout.name} block {block} has no two-linear MLP '
                                 f'to replace')
            sites['mlp_moe'].append(mlp)
    adapter = cfgs.adapter
    if adapter is not None:
        for block in layout.select_blocks(adapter.blocks, adapter.stages, 'adapter'):
            if adapter.placement == 'ffn':
                site = layout.ffn(block)
                if site is None:
                    raise ValueError(f'adapter: {layout.name} block {block} has no FFN the '
                                     f'layout recognises to place experts beside')
                sites['adapter'].append(site)
                continue
            for target in adapter.targets:
                site = layout.linear(block, target)
                if site is None or site.kind != 'linear':
                    raise ValueError(f"adapter.placement='linear': {layout.name} block {block} "
                                     f'has no {target!r} nn.Linear (packed attention takes plain '
                                     f'LoRA only)')
                sites['adapter'].append(site)
    _check_apart(sites)
    return sites


def _check_apart(sites: Dict[str, list]) -> None:
    """No module is wrapped twice: routed experts, plain LoRA and ``mlp_moe`` stay apart."""
    replaced = [m[0] for m in sites['mlp_moe']]
    for key in ('adapter', 'lora'):
        for site in sites[key]:
            inside = [r for r in replaced if site.name == r or site.name.startswith(r + '.')]
            if inside:
                what = ("adapter.placement='ffn' puts experts beside" if key == 'adapter'
                        and isinstance(site, FFNSite) else f'{key}.targets would wrap')
                raise ValueError(f'{what} {site.name}, inside the MLP {inside[0]} that mlp_moe '
                                 f'replaces; keep {key}.blocks and mlp_moe.blocks apart'
                                 + (f" or drop 'fc1'/'fc2' from {key}.targets"
                                    if isinstance(site, LinearSite) else ''))
    lora = {(s.name, s.target) for s in sites['lora']}
    both = sorted({s.name for s in sites['adapter'] if isinstance(s, LinearSite)
                   and (s.name, s.target) in lora})
    if both:
        raise ValueError(f'adapter.targets and lora.targets both wrap {both}; a linear takes '
                         f'one adapter')


def inject(host: nn.Module, root: nn.Module, layout: Layout, cfgs: AdapterConfigs,
           context: TaskContext, record_routing: bool = False) -> Injection:
    """Install ``cfgs`` into ``root`` (the plain backbone, ``host`` itself or its child).

    Args:
        host (nn.Module): The multi-task backbone; receives ``task_embed`` ``(T_e, C)``.
        root (nn.Module): The plain backbone the layout describes.
        layout (Layout): ``root``'s layout.
        cfgs (AdapterConfigs): What to install.
        context (TaskContext): Where routed layers read the task index.
        record_routing (bool): Routed layers record routing statistics.

    Returns:
        Injection: the wrapped names and what trains.
    """
    sites = _sites(layout, cfgs)
    done = Injection()
    num_tasks = cfgs.num_tasks
    if cfgs.lora is not None:
        lora = dict(rank=cfgs.lora.rank, alpha=cfgs.lora.alpha)
        packed: Dict[str, list] = {}
        for site in sites['lora']:
            if site.kind == 'packed':
                packed.setdefault(site.name, []).append(site.target)
            else:
                done.lora_names += wrap_modules(root, [site.name], lambda n, linear: MoELoRALinear(
                    linear, num_tasks=num_tasks, num_experts=1, top_k=1, num_shared=0,
                    shared_gating='none', **lora), nn.Linear)
        for name, targets in packed.items():
            done.lora_names += wrap_modules(root, [name], lambda n, attn: LoRAMultiheadAttention(
                attn, targets=targets, **lora), nn.MultiheadAttention)
    if cfgs.mlp_moe is not None:
        moe = cfgs.mlp_moe
        for name, fc1, fc2, act in sites['mlp_moe']:
            layer = moe.build(fc1, fc2, act, num_tasks, record_routing)
            wrap_modules(root, [name], lambda n, mlp: context.bind(layer))
            done.mlp_moe_names.append(name)
            done.replaced_mlps[name] = (fc1, fc2, act)
            done.layer_trainable.update(f'{name}.{p}' for p, param in layer.named_parameters()
                                        if param.requires_grad)
    if cfgs.adapter is not None:
        experts = cfgs.adapter.layer_kwargs(num_tasks, record_routing)
        for site in sites['adapter']:
            if isinstance(site, LinearSite):
                build = (lambda n, linear: MoELoRALinear(linear, **experts))
            else:
                build = (lambda n, ffn, s=site: MoELoRAFFN(
                    ffn, in_features=s.in_features, out_features=s.out_features,
                    channels_first=s.channels_first, **experts))
            wrap_modules(root, [site.name], lambda n, m, b=build: context.bind(b(n, m)))
            done.adapter_names.append(site.name)
    _install_task_embedding(host, root, layout, cfgs)
    return done


def _install_task_embedding(host: nn.Module, root: nn.Module, layout: Layout,
                            cfgs: AdapterConfigs) -> None:
    """``host.task_embed`` ``(T_e, C)`` (zeros) and the row of each task (``T_e``: none), added
    by a forward hook on the layout's token module (``host._add_task_embedding``, or a pre-hook
    ``host._add_task_embedding_to_input``)."""
    chosen = cfgs.task_embedding.tasks
    if not chosen:
        host.task_embed = None
        return
    host.task_embed = nn.Parameter(torch.zeros(len(chosen), layout.token_dims()))
    rows = [chosen.index(t) if t in chosen else len(chosen) for t in cfgs.tasks]
    host.register_buffer('_task_embed_row', torch.tensor(rows), persistent=False)
    try:
        module = root.get_submodule(layout.token_module)
    except AttributeError:
        raise ValueError(f'{layout.name} has no module {layout.token_module!r} where its layout '
                         f'forms the tokens') from None
    if layout.token_hook == 'input':
        module.register_forward_pre_hook(host._add_task_embedding_to_input)
    else:
        module.register_forward_hook(host._add_task_embedding)


def adapter_parameters(root: nn.Module) -> Set[str]:
    """Names (relative to ``root``) of every adapter parameter: experts, routers and LoRA
    factors, i.e. everything of a :class:`LoRAExperts` but its base layer."""
    selected = set()
    for module_name, module in root.named_modules():
        if isinstance(module, LoRAExperts):
            prefix = f'{module_name}.' if module_name else ''
            selected.update(prefix + p for p, _ in module.named_parameters()
                            if not p.startswith('base_layer.'))
    return selected
