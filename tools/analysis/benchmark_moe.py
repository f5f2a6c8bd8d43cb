"""Time LoRA-MoE adapters: one ViT-S block (default) or a whole multi-task training step.

Expert configurations are in the paper's ``N/k/S/r`` notation (Li et al., 2025, ASE): ``N``
experts *including* the ``S`` shared ones (sparse pool ``N - S``), top-``k`` of the sparse
pool, rank ``r`` each; 16-3-1-4, 32-6-2-2 and 64-12-4-1 all store 64 ranks and activate 16.

Every round runs every variant once, in turn, so that drifting machine load hits all of them
alike; times are medians over ``--repeats`` rounds, ratios are medians of the per-round
(paired) ratios.

**Block mode** (default). Forward + backward of one ViT-S block, batch 2, 1024 tokens, 384
channels (a ViT-S block on a 512x512 image with 16 px patches), adapters on
qkv/proj/fc1/fc2 (the per-linear placement), CPU, float32. The base weights are frozen, the
input requires grad (as inside a network), adapters and routers get gradients. Variants:

- ``plain``: the frozen block without adapters.
- ``16-3-1-4``, ``32-6-2-2``, ``64-12-4-1``, ASE ('adaptive') gating: mmase's fused
  :class:`~mmase.models.adapters.MoELoRALinear`.
- the same expert configurations with a per-expert-loop reference (:class:`LoopLoRAExperts`
  below: one ``nn.Linear`` pair per expert; ``--loop dispatch`` (default) runs each sparse
  expert on the tokens that selected it, as typical MoE code does, ``--loop dense`` runs every
  expert on all tokens, the formula as written). It is checked to compute the same outputs.
- ``multitask``: T = 5 tasks, 16-3-1-4, all tasks in one batched pass (input repeated per
  task, per-sample task index) vs one pass per task.

**Model mode** (``--model vit-s [vit-b]``). One training step of the PASCAL multi-task model
(``configs/_base_/models/ase_vit{,-b}_pascal_mt.py``: the segmentor's ``loss()`` on a
synthetic batch with all five tasks' ground truth, the sum of its losses, backward; heads,
task losses and the backbone's router losses included; data preprocessing not timed), at
224x224, batch 2, five tasks, random weights (no pretrained file; nonzero LoRA ``B`` and task
embeddings). Variants (backbone settings; LoRA = plain LoRA r=4 on qkv/proj shared by all
tasks, as the config's ``lora``):

- ``floor``: frozen ViT + LoRA + task embeddings (``adapter=None``), all five tasks in one
  batched pass (10 samples);
- ``ase:16-3-1-4``, ``ase:32-6-2-2``, ``ase:64-12-4-1``: the paper's ASE, experts beside every
  FFN (``placement='ffn'``) + LoRA + task embeddings, the config's MI loss;
- ``linear:16-3-1-4``: the per-linear placement, 16/3/1/4 on each of qkv/proj/fc1/fc2 (which
  leaves no linear for the plain LoRA: ``lora=None``) + task embeddings;
- ``mtl-vit``: the single-pass MTL-ViT (LoRA, no task embedding): one pass of 2 samples feeds
  all five heads;
- ``loop:64-12-4-1``: ``ase:64-12-4-1`` with every FFN's experts replaced by their
  per-expert-loop twin (same weights, checked to compute the same features);
- ``backbone:floor``, ``backbone:mtl-vit``: forward + backward of the backbone alone
  (``forward_tasks`` features of all tasks, summed), heads excluded;
- ``fgmoe-decoder``: FGMoE as a multi-task decoder on the same ViT, frozen
  (``configs/fgmoe/_base_/fgmoe-decoder_vit{-s,-b}_pascal_mt.py``: the encoder once per batch
  without gradient, two FGMoE decoder blocks 16-6-2 for all five tasks in one batched pass,
  one light head per task), reported against ASE 16/3/1/4 (``ratios``).

It reports against the issue's targets (ratios of one run): ASE 16/3/1/4 <= 1.05x the floor,
64/12/4/1 <= 1.05x 16/3/1/4, the loop >= 5x slower than the fused 64/12/4/1, the MTL-ViT's
backbone <= 0.25x the floor's; without a target, the FGMoE decoder's step over ASE 16/3/1/4's.
``--dtype bfloat16`` runs the model mode under autocast (as
AMP training does), the block mode with bf16 weights.

Example::

    python tools/analysis/benchmark_moe.py --threads 2 --repeats 9
    python tools/analysis/benchmark_moe.py --json
    python tools/analysis/benchmark_moe.py --threads 1 --clock cpu   # on a shared machine
    python tools/analysis/benchmark_moe.py --device cuda --repeats 50  # GPU, for comparison
    python tools/analysis/benchmark_moe.py --model vit-s vit-b --threads 2 --repeats 5 --json

JSON output (``--json``), block mode::

    {"plain_ms": ..., "configs": {"16-3-1-4": {"ms": ..., "ratio_to_plain": ...,
     "loop_ms": ..., "loop_over_ours": ...}, ...},
     "multitask": {"batched_ms": ..., "sequential_ms": ...}}

model mode::

    {"settings": {"image_size": 224, "batch": 2, "tasks": 5, "repeats": ..., "threads": ...,
                  "clock": ..., "loop": ..., "device": ..., "dtype": ...},
     "archs": {"vit-s": {"step_ms": {"floor": ..., "ase:16-3-1-4": ..., ...},
                         "step_over_floor": {"ase:16-3-1-4": ..., ...},
                         "backbone_ms": {"floor": ..., "mtl-vit": ...},
                         "targets": {"ase16_over_floor": {"ratio": ..., "target": "<= 1.05",
                                                          "met": true}, ...},
                         "ratios": {"fgmoe_decoder_over_ase16": ...}}, ...}}
"""
import argparse
import contextlib
import copy
import json
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)  # run from a clone
from mmase.models.adapters import (LoRAExperts, MoELoRAFFN, MoELoRALinear,  # noqa: E402
                                   RoutingBookkeeping, moe_gates)
from mmase.models.injection import TaskContext, wrap_linears  # noqa: E402
from mmase.models.backbones.ase_vit import TARGET_LAYERS  # noqa: E402
from mmase.models.backbones.vit_layers import Block  # noqa: E402

EXPERT_CONFIGS = ((16, 3, 1, 4), (32, 6, 2, 2), (64, 12, 4, 1))
BATCH, TOKENS, CHANNELS, HEADS = 2, 1024, 384, 6
NUM_TASKS = 5


def config_key(cfg) -> str:
    """``(16, 3, 1, 4)`` -> ``'16-3-1-4'``."""
    return '-'.join(map(str, cfg))


# ----------------------------------------------------------------------------------------------
# the per-expert-loop reference
class LoopLoRAExperts(RoutingBookkeeping, nn.Module):
    """Reference task-routed LoRA experts with Python loops (for timing and checking only).

    Same maths as :class:`~mmase.models.adapters.LoRAExperts` (``delta(x)`` of ``N/k/S/r``
    experts, ``N`` counting the ``S`` shared ones) and the same weights (see
    :meth:`from_fused`), written the way typical MoE code is: every expert is its own
    ``nn.Linear`` pair, the router one ``nn.Linear`` per task (a batch mixing tasks is split
    into one router call per task). ``dispatch=True`` (Mixtral-style): each sparse expert runs
    only on the tokens that selected it (gathered by index); ``dispatch=False`` (the formula as
    written): every sparse expert runs on all tokens and is weighted by its (possibly zero)
    gate. Shared experts always run on all tokens. Gates come from mmase's routing core
    (:func:`~mmase.models.adapters.moe_gates`) and the auxiliary losses and statistics from
    the same :class:`~mmase.models.adapters.RoutingBookkeeping` tail, so only the experts'
    arithmetic differs from the fused layer.

    Shapes: ``x`` ``(B, *, d_in)``, ``task`` int or LongTensor ``(B,)`` -> ``(B, *, d_out)``.
    """


    def __init__(self, in_features: int, out_features: int, num_tasks: int, num_experts: int,
                 top_k: int, num_shared: int, rank: int, scaling: float = 1.0,
                 shared_gating: str = 'adaptive', dispatch: bool = True,
                 load_balance: bool = False, mutual_information: bool = False,
                 record_routing: bool = False):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.num_tasks, self.num_experts, self.top_k = num_tasks, num_experts, top_k
        self.num_shared, self.num_sparse = num_shared, num_experts - num_shared
        self.rank, self.scaling, self.shared_gating = rank, scaling, shared_gating
        self.num_gated = num_experts if shared_gating == 'adaptive' else self.num_sparse
        self.dispatch = dispatch
        self.load_balance, self.mutual_information = load_balance, mutual_information
        self.record_routing = record_routing
        self.routers = nn.ModuleList(
            nn.Linear(in_features, num_experts, bias=False) for _ in range(num_tasks))
        self.lora_A = nn.ModuleList(
            nn.Linear(in_features, rank, bias=False) for _ in range(num_experts))
        self.lora_B = nn.ModuleList(
            nn.Linear(rank, out_features, bias=False) for _ in range(num_experts))
        self._init_bookkeeping()

    @classmethod
    def from_fused(cls, fused: LoRAExperts, dispatch: bool = True) -> 'LoopLoRAExperts':
        """A loop module computing the same function as ``fused`` (weights copied)."""
        if fused.router is None:
            raise ValueError('the loop reference needs routed experts (constant gates have '
                             'no router to copy)')
        loop = cls(fused.in_features, fused.out_features, fused.num_tasks, fused.num_experts,
                   fused.top_k, fused.num_shared, fused.rank, fused.scaling,
                   fused.shared_gating, dispatch, fused.load_balance,
                   fused.mutual_information, fused.record_routing)
        loop.to(device=fused.lora_A.device, dtype=fused.lora_A.dtype)
        r = fused.rank
        with torch.no_grad():
            for task, router in enumerate(loop.routers):
                router.weight.copy_(fused.router.weight[task])
            for e, (a, b) in enumerate(zip(loop.lora_A, loop.lora_B)):
                a.weight.copy_(fused.lora_A[e * r:(e + 1) * r])
                b.weight.copy_(fused.lora_B[:, e * r:(e + 1) * r])
        loop.train(fused.training)
        return loop

    def _logits(self, flat: torch.Tensor, task, batch_size: int) -> torch.Tensor:
        """``(M, N)`` router logits: one router call per task present in the batch."""
        if isinstance(task, int):
            return self.routers[task](flat)
        per_sample = flat.view(batch_size, -1, self.in_features)
        parts, order = [], []
        for t in task.unique().tolist():
            samples = (task == t).nonzero().squeeze(1)
            parts.append(self.routers[t](per_sample.index_select(0, samples)))
            order.append(samples)
        logits = torch.cat(parts).index_select(0, torch.argsort(torch.cat(order)))
        return logits.reshape(-1, self.num_experts)

    def forward(self, x: torch.Tensor, task) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        logits = self._logits(flat, task, x.shape[0])
        gates, top_idx = moe_gates(logits, self.num_sparse, self.top_k, self.shared_gating)
        scaled = gates * self.scaling
        out = flat.new_zeros(flat.shape[0], self.out_features)
        for expert in range(self.num_sparse):
            if not self.dispatch:
                update = self.lora_B[expert](self.lora_A[expert](flat))
                out = out + update * scaled[:, expert, None]
                continue
            if top_idx is None:  # every sparse expert selected
                tokens = torch.arange(flat.shape[0], device=flat.device)
            else:
                tokens = (top_idx == expert).any(-1).nonzero().squeeze(1)
            if tokens.numel():
                picked = flat.index_select(0, tokens)
                update = self.lora_B[expert](self.lora_A[expert](picked))
                out = out.index_add(0, tokens, update * scaled[tokens, expert, None])
        for shared in range(self.num_sparse, self.num_experts):
            out = out + self.lora_B[shared](self.lora_A[shared](flat)) * scaled[:, shared, None]
        self._after_routing(logits, top_idx, self.num_sparse, self.num_gated, task, x.shape[0],
                            sparse_mass=gates[:, :self.num_sparse].sum(-1),
                            shared_mass=gates[:, self.num_sparse:].sum(-1))
        return out.view(*x.shape[:-1], self.out_features)


class LoopMoELoRALinear(nn.Module):
    """A frozen linear plus :class:`LoopLoRAExperts`: the loop twin of ``MoELoRALinear``."""


    def __init__(self, base_layer: nn.Linear, experts: LoopLoRAExperts):
        super().__init__()
        self.base_layer = base_layer.requires_grad_(False)
        self.experts = experts

    @classmethod
    def from_fused(cls, base_layer: nn.Linear, fused: MoELoRALinear,
                   dispatch: bool = True) -> 'LoopMoELoRALinear':
        """A loop module computing the same function as ``fused`` (weights copied)."""
        return cls(base_layer, LoopLoRAExperts.from_fused(fused, dispatch))

    def forward(self, x: torch.Tensor, task) -> torch.Tensor:
        return self.base_layer(x) + self.experts(x, task)


# ----------------------------------------------------------------------------------------------
# timing
def time_rounds(variants: Dict[str, Callable[[], None]], repeats: int, warmup: int,
                clock: Callable[[], float], sync: Callable[[], None],
                progress: Optional[str] = None) -> Dict[str, List[float]]:
    """Run every variant once per round, in turn; returns ``name -> [ms per round]``.

    With ``progress`` (a label), each finished round's times go to stderr."""
    times: Dict[str, List[float]] = {name: [] for name in variants}
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    for round_index in range(repeats):
        for name, fn in variants.items():
            sync()
            start = clock()
            fn()
            sync()
            times[name].append((clock() - start) * 1000)
        if progress is not None:
            line = ', '.join(f'{name} {values[-1]:.0f}' for name, values in times.items())
            print(f'{progress} round {round_index + 1}/{repeats} (ms): {line}', file=sys.stderr,
                  flush=True)
    return times


def paired(times: Dict[str, List[float]], num: str, den: str) -> float:
    """Median over rounds of the ratio of two variants timed in the same round."""
    return statistics.median(a / b for a, b in zip(times[num], times[den]))


def _sync_for(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)


# ----------------------------------------------------------------------------------------------
# block mode
def plain_block(channels: int = CHANNELS, heads: int = HEADS) -> Block:
    """A frozen ViT block (ViT-S by default; same weights on every call)."""
    torch.manual_seed(0)
    block = Block(channels, heads, 4.0).requires_grad_(False)
    block.task_context = TaskContext()  # the routed layers read the task from it
    return block


def adapted_block(expert_cfg, num_tasks: int = 1, channels: int = CHANNELS,
                  heads: int = HEADS) -> Block:
    """A ViT block with mmase's fused adapters ``N/k/S/r`` on qkv/proj/fc1/fc2 (nonzero B)."""
    num_experts, top_k, num_shared, rank = expert_cfg
    block = plain_block(channels, heads)
    generator = torch.Generator().manual_seed(1)

    def factory(name, linear):
        module = MoELoRALinear(linear, num_tasks=num_tasks, num_experts=num_experts,
                               top_k=top_k, num_shared=num_shared, rank=rank,
                               shared_gating='adaptive')
        with torch.no_grad():  # nonzero B: nothing can be skipped
            module.lora_B.copy_(0.02 * torch.randn(module.lora_B.shape, generator=generator))
        return block.task_context.bind(module)

    wrap_linears(block, TARGET_LAYERS.values(), factory)
    return block


def loop_block(fused_block: Block, dispatch: bool = True, channels: int = CHANNELS,
               heads: int = HEADS) -> Block:
    """The per-expert-loop twin of ``fused_block`` (same weights, same function)."""
    block = plain_block(channels, heads)
    wrap_linears(block, TARGET_LAYERS.values(),
                 lambda name, linear: block.task_context.bind(LoopMoELoRALinear.from_fused(
                     linear, fused_block.get_submodule(name), dispatch)))
    return block


def call(block: nn.Module, x: torch.Tensor, task) -> torch.Tensor:
    """``block(x)`` for ``task`` (an int or one index per sample)."""
    with block.task_context.use(task):
        return block(x)


def step(block: nn.Module, x: torch.Tensor, task) -> None:
    """One forward+backward; gradients are dropped afterwards."""
    call(block, x, task).sum().backward()
    x.grad = None
    for param in block.parameters():
        param.grad = None


def run(repeats: int, warmup: int = 1, clock: Callable[[], float] = time.perf_counter,
        dispatch: bool = True, device: str = 'cpu', dtype: torch.dtype = torch.float32,
        batch: int = BATCH, tokens: int = TOKENS, channels: int = CHANNELS,
        heads: int = HEADS) -> Dict:
    """Block mode: time all variants with ``clock`` (seconds); returns the JSON-schema dict
    (times in ms).

    ``dispatch`` selects the loop reference (see :class:`LoopLoRAExperts`). On CUDA every
    timed call is bracketed by ``torch.cuda.synchronize()``. The sizes default to the ViT-S
    setting above (smaller ones are for tests).
    """
    device = torch.device(device)
    torch.manual_seed(0)
    x = torch.randn(batch, tokens, channels, device=device, dtype=dtype, requires_grad=True)
    x_tasks = x.detach().repeat(NUM_TASKS, 1, 1).requires_grad_(True)
    task_index = torch.arange(NUM_TASKS, device=device).repeat_interleave(batch)
    tolerance = 1e-3 if dtype == torch.float32 else 5e-2

    def place(module: nn.Module) -> nn.Module:
        return module.to(device=device, dtype=dtype)

    variants: Dict[str, Callable[[], None]] = {}
    plain = place(plain_block(channels, heads))
    variants['plain'] = lambda: step(plain, x, 0)
    loops = {}
    for cfg in EXPERT_CONFIGS:  # ours right after plain, the slow loops after them
        key = config_key(cfg)
        ours = adapted_block(cfg, channels=channels, heads=heads)
        loop = place(loop_block(ours, dispatch, channels, heads))
        ours = place(ours)
        with torch.no_grad():  # the reference must compute the same function
            diff = (call(ours, x, 0) - call(loop, x, 0)).abs().max().item()
        if diff > tolerance:
            raise RuntimeError(f'{key}: loop reference differs from the fused module by {diff}')
        variants[key] = lambda b=ours: step(b, x, 0)
        loops[f'loop:{key}'] = lambda b=loop: step(b, x, 0)
    variants.update(loops)
    multi = place(adapted_block(EXPERT_CONFIGS[0], NUM_TASKS, channels, heads))
    with torch.no_grad():  # batched multi-task must equal one pass per task
        batched = call(multi, x_tasks, task_index)
        diff = max((batched[t * batch:(t + 1) * batch] - call(multi, x, t)).abs().max().item()
                   for t in range(NUM_TASKS))
    if diff > tolerance:
        raise RuntimeError(f'batched multi-task differs from sequential by {diff}')
    variants['batched'] = lambda: step(multi, x_tasks, task_index)

    def sequential():
        for task in range(NUM_TASKS):
            step(multi, x, task)

    variants['sequential'] = sequential

    times = time_rounds(variants, repeats, warmup, clock, _sync_for(device))
    med = {name: statistics.median(values) for name, values in times.items()}
    result = dict(plain_ms=round(med['plain'], 2), configs={})
    for cfg in EXPERT_CONFIGS:
        key = config_key(cfg)
        result['configs'][key] = dict(
            ms=round(med[key], 2), ratio_to_plain=round(paired(times, key, 'plain'), 3),
            loop_ms=round(med[f'loop:{key}'], 2),
            loop_over_ours=round(paired(times, f'loop:{key}', key), 2))
    result['multitask'] = dict(batched_ms=round(med['batched'], 2),
                               sequential_ms=round(med['sequential'], 2))
    return result


def print_table(result: Dict, threads: int, repeats: int, clock: str, loop: str,
                device: str = 'cpu', dtype: str = 'float32') -> None:
    where = f'CPU, {threads} thread(s)' if device == 'cpu' else device
    print(f'ViT-S block fwd+bwd, batch {BATCH} x {TOKENS} tokens x {CHANNELS} ch, {where}, '
          f'{dtype}, {clock} clock, median of {repeats}, {loop} loop reference')
    print(f'{"variant":<12}{"ms":>10}{"x plain":>10}{"loop ms":>10}{"loop/ours":>11}')
    print(f'{"plain":<12}{result["plain_ms"]:>10.1f}{1.0:>10.3f}')
    for key, row in result['configs'].items():
        print(f'{key:<12}{row["ms"]:>10.1f}{row["ratio_to_plain"]:>10.3f}'
              f'{row["loop_ms"]:>10.1f}{row["loop_over_ours"]:>11.2f}')
    multi = result['multitask']
    print(f'multitask T={NUM_TASKS} (16-3-1-4): batched {multi["batched_ms"]:.1f} ms, '
          f'sequential {multi["sequential_ms"]:.1f} ms')


# ----------------------------------------------------------------------------------------------
# model mode
MODEL_CONFIGS = {
    'vit-s': 'configs/_base_/models/ase_vit_pascal_mt.py',
    'vit-b': 'configs/_base_/models/ase_vit-b_pascal_mt.py',
}
MODEL_IMAGE_SIZE, MODEL_BATCH = 224, 2
#: The loop reference's expert configuration (the largest pool).
LOOP_CONFIG = EXPERT_CONFIGS[-1]
#: (name, numerator, denominator, comparison, limit) of the issue's speed targets.
MODEL_TARGETS = (
    ('ase16_over_floor', 'ase:16-3-1-4', 'floor', '<=', 1.05),
    ('ase64_over_ase16', 'ase:64-12-4-1', 'ase:16-3-1-4', '<=', 1.05),
    ('loop_over_ase64', 'loop:64-12-4-1', 'ase:64-12-4-1', '>=', 5.0),
    ('mtl_backbone_over_floor_backbone', 'backbone:mtl-vit', 'backbone:floor', '<=', 0.25),
)
#: The FGMoE decoder on the frozen ViT of the same name (configs/fgmoe).
FGMOE_DECODER_CONFIGS = {
    'vit-s': 'configs/fgmoe/_base_/fgmoe-decoder_vit-s_pascal_mt.py',
    'vit-b': 'configs/fgmoe/_base_/fgmoe-decoder_vit-b_pascal_mt.py',
}
FGMOE_DECODER = 'fgmoe-decoder'
#: (name, numerator, denominator) of the ratios reported without a target.
MODEL_RATIOS = (('fgmoe_decoder_over_ase16', FGMOE_DECODER, 'ase:16-3-1-4'), )


def model_variants(adapter: dict) -> Dict[str, dict]:
    """Variant name -> backbone overrides; ``adapter`` is the config's (the paper's ASE)."""
    def experts(cfg, placement='ffn'):
        num_experts, top_k, num_shared, rank = cfg
        # alpha = rank (scale 1), as configs/ase/ase_vit-*_N-k-S-r_*.py
        return dict(adapter, placement=placement, num_experts=num_experts, top_k=top_k,
                    num_shared=num_shared, rank=rank, alpha=rank, targets=None,
                    active_experts=None)

    variants = dict(floor=dict(adapter=None, task_embedding=True))
    for cfg in EXPERT_CONFIGS:
        variants[f'ase:{config_key(cfg)}'] = dict(adapter=experts(cfg), task_embedding=True)
    variants[f'linear:{config_key(EXPERT_CONFIGS[0])}'] = dict(
        adapter=experts(EXPERT_CONFIGS[0], 'linear'), lora=None, task_embedding=True)
    variants['mtl-vit'] = dict(adapter=None, task_embedding=False)
    return variants


def model_config(arch: Union[str, dict], image_size: int = MODEL_IMAGE_SIZE,
                 head_channels: Optional[int] = None) -> dict:
    """The config's model dict at ``image_size``, no pretrained file.

    ``arch`` is ``'vit-s'`` or ``'vit-b'`` (their configs), or a dict ``embed_dims``,
    ``num_layers`` (>= 4), ``num_heads`` on the ViT-S config (its heads read the last four
    blocks); ``head_channels`` overrides the heads' width (for tests).
    """
    from mmengine.config import Config
    name = arch if isinstance(arch, str) else 'vit-s'
    if name not in MODEL_CONFIGS:
        raise ValueError(f'--model {name!r} is not one of {sorted(MODEL_CONFIGS)}')
    from mmase.datasets.pascal_mt_labels import PASCAL_MT_TASKS
    cfg = copy.deepcopy(Config.fromfile(osp.join(ROOT, MODEL_CONFIGS[name])).model.to_dict())
    cfg.setdefault('tasks', PASCAL_MT_TASKS)  # a model fragment: the experiment states them
    cfg['data_preprocessor']['size'] = (image_size, image_size)
    cfg['backbone'].update(img_size=image_size, pretrained=None)
    heads = cfg['decode_heads'].values()
    if isinstance(arch, dict):
        cfg['backbone']['arch'] = dict(arch)
        cfg['backbone']['out_indices'] = tuple(range(arch['num_layers'] - 4, arch['num_layers']))
        for head in heads:
            head['in_channels'] = [arch['embed_dims']] * 4
    if head_channels is not None:
        for head in heads:
            head['channels'] = head_channels
    return cfg


def fgmoe_decoder_config(arch: Union[str, dict], image_size: int = MODEL_IMAGE_SIZE,
                         head_channels: Optional[int] = None) -> dict:
    """The FGMoE-decoder model dict on the frozen ViT ``arch`` (as :func:`model_config`: a
    dict ``arch`` replaces the ViT-S encoder, its last four blocks feed a decoder of the
    encoder's width and heads), at ``image_size``, no pretrained file."""
    from mmengine.config import Config
    name = arch if isinstance(arch, str) else 'vit-s'
    from mmase.datasets.pascal_mt_labels import PASCAL_MT_TASKS
    cfg = copy.deepcopy(Config.fromfile(osp.join(ROOT, FGMOE_DECODER_CONFIGS[name])).model
                        .to_dict())
    cfg.setdefault('tasks', PASCAL_MT_TASKS)  # a model fragment: the experiment states them
    cfg['data_preprocessor']['size'] = (image_size, image_size)
    encoder, decoder = cfg['backbone']['encoder'], cfg['backbone']['decoder']
    encoder.update(img_size=image_size, pretrained=None)
    heads = cfg['decode_heads'].values()
    if isinstance(arch, dict):
        dims = arch['embed_dims']
        encoder['arch'] = dict(arch)
        encoder['out_indices'] = tuple(range(arch['num_layers'] - 4, arch['num_layers']))
        decoder.update(in_channels=[dims] * 4, embed_dims=dims, num_heads=arch['num_heads'])
        for head in heads:
            head['in_channels'] = [dims] * len(head['in_channels'])
    if head_channels is not None:
        for head in heads:
            head['channels'] = head_channels
    return cfg


def synthetic_batch(batch: int, size: int, seed: int = 0) -> dict:
    """Raw dataloader output: uint8 images and samples with all five tasks' ground truth."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    generator = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=generator,
                                    dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(ori_shape=(size, size), img_shape=(size, size),
                                             flip=False))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 21, (1, size, size), generator=generator))
        for field, classes in (('gt_human_parts', 7), ('gt_sal', 2), ('gt_edge', 2)):
            sample.set_field(PixelData(data=torch.randint(0, classes, (1, size, size),
                                                          generator=generator)), field)
        normals = nn.functional.normalize(torch.randn(3, size, size, generator=generator), dim=0)
        sample.set_field(PixelData(data=normals), 'gt_normals')
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def build_model(cfg: dict, seed: int = 0) -> nn.Module:
    """Build ``cfg``; LoRA ``B`` and task embeddings get small random values (as after some
    training: nothing is zero, nothing can be skipped)."""
    import mmase  # noqa: F401  (registers the modules)
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoRAExperts):
                module.lora_B.copy_(0.02 * torch.randn(module.lora_B.shape, generator=generator))
        if getattr(model.backbone, 'task_embed', None) is not None:
            embed = model.backbone.task_embed
            embed.copy_(0.02 * torch.randn(embed.shape, generator=generator))
    return model.train()


def loop_model(fused: nn.Module, dispatch: bool = True) -> nn.Module:
    """A copy of ``fused`` whose FFN-level experts are :class:`LoopLoRAExperts` twins."""
    model = copy.deepcopy(fused)
    backbone = model.backbone
    swapped = 0
    for name, module in list(backbone.named_modules()):
        if isinstance(module, MoELoRAFFN):
            module.experts = LoopLoRAExperts.from_fused(module.experts, dispatch)
            # The backbone re-applies its freezing from the names it selected at build
            # (train()); the twins' parameters are new names, so they join that set.
            backbone._trainable_names.update(
                f'{name}.experts.{p}' for p, _ in module.experts.named_parameters())
            swapped += 1
    if not swapped:
        raise ValueError('the model has no FFN-level experts (MoELoRAFFN) to loop over')
    return model.train()


def _trainable_numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def check_loop_model(fused: nn.Module, loop: nn.Module, inputs: torch.Tensor,
                     tolerance: float) -> float:
    """Raise unless ``loop`` trains as many parameters as ``fused`` and computes the same
    features for every task (max abs difference relative to the features' scale <=
    ``tolerance``); returns that relative difference."""
    if _trainable_numel(loop) != _trainable_numel(fused):
        raise RuntimeError(f'loop reference trains {_trainable_numel(loop)} parameters, the '
                           f'fused model {_trainable_numel(fused)}')
    fused.eval(), loop.eval()
    with torch.no_grad():
        ours = fused.backbone.forward_tasks(inputs)
        theirs = loop.backbone.forward_tasks(inputs)
    fused.train(), loop.train()
    diff = scale = 0.0
    for task, maps in ours.items():
        for a, b in zip(maps, theirs[task]):
            diff = max(diff, (a.float() - b.float()).abs().max().item())
            scale = max(scale, a.float().abs().max().item())
    relative = diff / max(scale, 1e-12)
    if relative > tolerance:
        raise RuntimeError(f'loop reference differs from the fused model by {diff} '
                           f'({relative:.2e} of the features\' scale)')
    return relative


def train_step(model: nn.Module, data: dict) -> None:
    """The segmentor's ``loss()``, the sum of its losses, backward; gradients dropped."""
    losses = model.loss(data['inputs'], data['data_samples'])
    sum(value for name, value in losses.items() if 'loss' in name).backward()
    model.zero_grad(set_to_none=True)


def backbone_step(model: nn.Module, inputs: torch.Tensor) -> None:
    """Forward + backward of the backbone's features of all tasks (heads excluded)."""
    backbone = model.backbone
    feats = backbone.forward_tasks(inputs)
    total = sum(out.float().sum() for maps in feats.values() for out in maps)
    total = total + sum(backbone.pop_aux_losses().values())
    total.backward()
    model.zero_grad(set_to_none=True)


def run_model(arch: Union[str, dict] = 'vit-s', repeats: int = 5, warmup: int = 1,
              clock: Callable[[], float] = time.perf_counter, dispatch: bool = True,
              device: str = 'cpu', dtype: torch.dtype = torch.float32,
              image_size: int = MODEL_IMAGE_SIZE, batch: int = MODEL_BATCH,
              head_channels: Optional[int] = None) -> Dict:
    """Model mode for one architecture; returns its entry of ``archs`` (times in ms)."""
    device = torch.device(device)
    base = model_config(arch, image_size, head_channels)
    specs = model_variants(base['backbone']['adapter'])
    models = {}
    for name, overrides in specs.items():
        cfg = copy.deepcopy(base)
        cfg['backbone'].update(copy.deepcopy(overrides))
        models[name] = build_model(cfg)
    models[FGMOE_DECODER] = build_model(fgmoe_decoder_config(arch, image_size, head_channels))
    if models['floor'].backbone.task_agnostic or not models['mtl-vit'].backbone.task_agnostic:
        raise RuntimeError('expected the floor to run per task (task embeddings) and the '
                           'MTL-ViT once for all tasks')
    loop_name = f'loop:{config_key(LOOP_CONFIG)}'
    models[loop_name] = loop_model(models[f'ase:{config_key(LOOP_CONFIG)}'], dispatch)
    for model in models.values():
        model.to(device)
    raw = synthetic_batch(batch, image_size)
    data = models['floor'].data_preprocessor(raw, training=True)
    data['inputs'] = data['inputs'].to(device)
    check_loop_model(models[f'ase:{config_key(LOOP_CONFIG)}'], models[loop_name],
                     data['inputs'], 1e-4)

    autocast = (torch.autocast(device.type, dtype=dtype) if dtype != torch.float32
                else contextlib.nullcontext())

    def timed(fn, model, arg):
        def call():
            with autocast:
                fn(model, arg)
        return call

    variants = {name: timed(train_step, model, data) for name, model in models.items()}
    for name in ('floor', 'mtl-vit'):
        variants[f'backbone:{name}'] = timed(backbone_step, models[name], data['inputs'])
    times = time_rounds(variants, repeats, warmup, clock, _sync_for(device),
                        progress=arch if isinstance(arch, str) else 'tiny')
    med = {name: statistics.median(values) for name, values in times.items()}
    result = dict(
        step_ms={name: round(med[name], 1) for name in models},
        step_over_floor={name: round(paired(times, name, 'floor'), 3)
                         for name in models if name != 'floor'},
        backbone_ms={name: round(med[f'backbone:{name}'], 1) for name in ('floor', 'mtl-vit')},
        targets={},
        ratios={key: round(paired(times, num, den), 3) for key, num, den in MODEL_RATIOS})
    for key, num, den, op, limit in MODEL_TARGETS:
        ratio = paired(times, num, den)
        met = ratio <= limit if op == '<=' else ratio >= limit
        result['targets'][key] = dict(ratio=round(ratio, 3), target=f'{op} {limit:g}',
                                      met=bool(met))
    return result


def print_model_table(result: Dict) -> None:
    settings = result['settings']
    where = (f'CPU, {settings["threads"]} thread(s)' if settings['device'] == 'cpu'
             else settings['device'])
    print(f'training step (loss + backward, heads included), {settings["image_size"]}x'
          f'{settings["image_size"]}, batch {settings["batch"]}, {settings["tasks"]} tasks, '
          f'{where}, {settings["dtype"]}, {settings["clock"]} clock, median of '
          f'{settings["repeats"]}, {settings["loop"]} loop reference')
    for arch, row in result['archs'].items():
        print(f'\n{arch}')
        print(f'{"variant":<20}{"ms":>10}{"x floor":>10}')
        for name, ms in row['step_ms'].items():
            ratio = row['step_over_floor'].get(name, 1.0)
            print(f'{name:<20}{ms:>10.1f}{ratio:>10.3f}')
        for name, ms in row['backbone_ms'].items():
            print(f'{"backbone:" + name:<20}{ms:>10.1f}')
        for key, target in row['targets'].items():
            status = 'met' if target['met'] else 'MISSED'
            print(f'target {key}: {target["ratio"]:.3f} (want {target["target"]}) {status}')
        for key, ratio in row['ratios'].items():
            print(f'ratio {key}: {ratio:.3f}')


def main(argv=None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--json', action='store_true', help='print the result as JSON')
    parser.add_argument('--model', nargs='+', choices=sorted(MODEL_CONFIGS), default=None,
                        help='time a whole multi-task training step of these ViTs (model '
                        'mode) instead of one block')
    parser.add_argument('--repeats', type=int, default=9,
                        help='timed rounds (median); shared CPUs drift by 5-10 %% between '
                        'rounds')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads (default: leave as is)')
    parser.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                        help="'wall': time.perf_counter; 'cpu': time.process_time, the CPU time "
                        'of this process (with --threads 1 it ignores time stolen by other '
                        'processes on a busy machine)')
    parser.add_argument('--loop', choices=('dispatch', 'dense'), default='dispatch',
                        help="per-expert-loop reference: 'dispatch' runs each sparse expert on "
                        "its tokens only (typical MoE code), 'dense' on all tokens (the formula "
                        'as written)')
    parser.add_argument('--device', default='cpu',
                        help="torch device, e.g. 'cpu' (the issue's setting) or 'cuda'")
    parser.add_argument('--dtype', choices=('float32', 'bfloat16'), default='float32',
                        help='block mode: parameter and activation dtype; model mode: '
                        'autocast dtype')
    args = parser.parse_args(argv)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error(f'--device {args.device}: CUDA is not available')
    if args.device.startswith('cuda') and args.clock == 'cpu':
        parser.error('--clock cpu measures this process only; use the wall clock on CUDA')
    if args.repeats < 1:
        parser.error('--repeats must be >= 1')
    if args.threads is not None:
        if args.threads < 1:
            parser.error('--threads must be >= 1')
        torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == 'wall' else time.process_time
    dispatch = args.loop == 'dispatch'
    dtype = getattr(torch, args.dtype)
    if args.model is None:
        result = run(args.repeats, clock=clock, dispatch=dispatch, device=args.device,
                     dtype=dtype)
    else:
        result = dict(
            settings=dict(image_size=MODEL_IMAGE_SIZE, batch=MODEL_BATCH, tasks=NUM_TASKS,
                          repeats=args.repeats, threads=torch.get_num_threads(),
                          clock=args.clock, loop=args.loop, device=args.device,
                          dtype=args.dtype),
            archs={arch: run_model(arch, args.repeats, clock=clock, dispatch=dispatch,
                                   device=args.device, dtype=dtype)
                   for arch in dict.fromkeys(args.model)})
    if args.json:
        print(json.dumps(result))
    elif args.model is None:
        print_table(result, torch.get_num_threads(), args.repeats, args.clock, args.loop,
                    args.device, args.dtype)
    else:
        print_model_table(result)
    return result


if __name__ == '__main__':
    main()
