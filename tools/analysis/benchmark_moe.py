"""Time forward+backward of one ViT-S block with LoRA-MoE adapters against the frozen plain block.

Setup: batch 2, 1024 tokens, 384 channels (a ViT-S block on a 512x512 image with 16 px
patches), adapters on qkv/proj/fc1/fc2, CPU, float32. The base weights are frozen, the input
requires grad (as inside a network), adapters and routers get gradients.

Timed variants (every round runs every variant once, in turn, so that drifting machine load
hits all of them alike; times are medians over ``--repeats`` rounds, ratios are medians of the
per-round ratios):

- ``plain``: the frozen block without adapters.
- ``E-k-S-r`` for (16/3/1/4), (32/6/2/2), (64/12/4/1), ASE ('adaptive') gating: mmase's
  fused :class:`~mmase.models.adapters.MoELoRALinear`.
- the same expert configurations with a per-expert-loop reference (``LoopMoELoRALinear``
  below: one ``nn.Linear`` pair per expert; ``--loop dispatch`` (default) runs each sparse
  expert on the tokens that selected it, as typical MoE code does, ``--loop dense`` runs every
  expert on all tokens, the formula as written). It is checked to compute the same outputs.
- ``multitask``: T = 5 tasks, (16/3/1/4), all tasks in one batched pass (input repeated per
  task, per-sample task index) vs one pass per task.

Example::

    python tools/analysis/benchmark_moe.py --threads 2 --repeats 9
    python tools/analysis/benchmark_moe.py --json
    python tools/analysis/benchmark_moe.py --threads 1 --clock cpu   # on a shared machine
    python tools/analysis/benchmark_moe.py --device cuda --repeats 50  # GPU, for comparison

JSON output (``--json``)::

    {"plain_ms": ..., "configs": {"16-3-1-4": {"ms": ..., "ratio_to_plain": ...,
     "loop_ms": ..., "loop_over_ours": ...}, ...},
     "multitask": {"batched_ms": ..., "sequential_ms": ...}}
"""
import argparse
import json
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List

import torch
import torch.nn as nn

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a clone
from mmase.models.adapters import MoELoRALinear, moe_gates, wrap_linears  # noqa: E402
from mmase.models.backbones.ase_vit import TARGET_LAYERS, Block  # noqa: E402

EXPERT_CONFIGS = ((16, 3, 1, 4), (32, 6, 2, 2), (64, 12, 4, 1))
BATCH, TOKENS, CHANNELS, HEADS = 2, 1024, 384, 6
NUM_TASKS = 5


class LoopMoELoRALinear(nn.Module):
    """Reference LoRA-MoE with a Python loop over experts (for timing and checking only).

    Same maths as :class:`MoELoRALinear` with 'adaptive' gating and the same weights (see
    :meth:`from_fused`), written the way typical MoE code is: every expert is its own
    ``nn.Linear`` pair, the router one ``nn.Linear`` per task. ``dispatch=True`` (Mixtral-style):
    each sparse expert runs only on the tokens that selected it (gathered by index);
    ``dispatch=False`` (the formula as written): every expert runs on all tokens and is
    weighted by its (possibly zero) gate. Shared experts always run on all tokens.
    """

    task_conditioned = True

    def __init__(self, base_layer: nn.Linear, num_tasks: int, num_experts: int, top_k: int,
                 num_shared: int, rank: int, scaling: float = 1.0, dispatch: bool = True):
        super().__init__()
        self.base_layer = base_layer.requires_grad_(False)
        self.num_experts, self.top_k, self.num_shared = num_experts, top_k, num_shared
        self.scaling = scaling
        self.dispatch = dispatch
        total = num_experts + num_shared
        self.routers = nn.ModuleList(
            nn.Linear(base_layer.in_features, total, bias=False) for _ in range(num_tasks))
        self.lora_A = nn.ModuleList(
            nn.Linear(base_layer.in_features, rank, bias=False) for _ in range(total))
        self.lora_B = nn.ModuleList(
            nn.Linear(rank, base_layer.out_features, bias=False) for _ in range(total))

    @classmethod
    def from_fused(cls, base_layer: nn.Linear, fused: MoELoRALinear,
                   dispatch: bool = True) -> 'LoopMoELoRALinear':
        """A loop module computing the same function as ``fused`` (weights copied)."""
        loop = cls(base_layer, fused.num_tasks, fused.num_experts, fused.top_k,
                   fused.num_shared, fused.rank, fused.scaling, dispatch)
        r = fused.rank
        with torch.no_grad():
            for task, router in enumerate(loop.routers):
                router.weight.copy_(fused.router.weight[task])
            for e, (a, b) in enumerate(zip(loop.lora_A, loop.lora_B)):
                a.weight.copy_(fused.lora_A[e * r:(e + 1) * r])
                b.weight.copy_(fused.lora_B[:, e * r:(e + 1) * r])
        return loop

    def forward(self, x: torch.Tensor, task: int) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        gates, top_idx = moe_gates(self.routers[task](flat), self.num_experts, self.top_k,
                                   'adaptive')
        gates = gates * self.scaling
        out = self.base_layer(flat)
        for expert in range(self.num_experts):
            if not self.dispatch:
                update = self.lora_B[expert](self.lora_A[expert](flat))
                out = out + update * gates[:, expert, None]
                continue
            tokens = (top_idx == expert).any(-1).nonzero().squeeze(1)
            if tokens.numel():
                picked = flat.index_select(0, tokens)
                update = self.lora_B[expert](self.lora_A[expert](picked))
                out = out.index_add(0, tokens, update * gates[tokens, expert, None])
        for shared in range(self.num_experts, self.num_experts + self.num_shared):
            out = out + self.lora_B[shared](self.lora_A[shared](flat)) * gates[:, shared, None]
        return out.reshape(*x.shape[:-1], -1)


def plain_block(channels: int = CHANNELS, heads: int = HEADS) -> Block:
    """A frozen ViT block (ViT-S by default; same weights on every call)."""
    torch.manual_seed(0)
    return Block(channels, heads, 4.0).requires_grad_(False)


def adapted_block(expert_cfg, num_tasks: int = 1, channels: int = CHANNELS,
                  heads: int = HEADS) -> Block:
    """A ViT block with mmase's fused adapters on qkv/proj/fc1/fc2 (nonzero B)."""
    num_experts, top_k, num_shared, rank = expert_cfg
    block = plain_block(channels, heads)
    generator = torch.Generator().manual_seed(1)

    def factory(name, linear):
        module = MoELoRALinear(linear, num_tasks=num_tasks, num_experts=num_experts,
                               top_k=top_k, num_shared=num_shared, rank=rank,
                               shared_gating='adaptive')
        with torch.no_grad():  # nonzero B: nothing can be skipped
            module.lora_B.copy_(0.02 * torch.randn(module.lora_B.shape, generator=generator))
        return module

    wrap_linears(block, TARGET_LAYERS.values(), factory)
    return block


def loop_block(fused_block: Block, dispatch: bool = True, channels: int = CHANNELS,
               heads: int = HEADS) -> Block:
    """The per-expert-loop twin of ``fused_block`` (same weights, same function)."""
    block = plain_block(channels, heads)
    wrap_linears(block, TARGET_LAYERS.values(),
                 lambda name, linear: LoopMoELoRALinear.from_fused(
                     linear, fused_block.get_submodule(name), dispatch))
    return block


def step(block: nn.Module, x: torch.Tensor, task) -> None:
    """One forward+backward; gradients are dropped afterwards."""
    block(x, task).sum().backward()
    x.grad = None
    for param in block.parameters():
        param.grad = None


def run(repeats: int, warmup: int = 1, clock: Callable[[], float] = time.perf_counter,
        dispatch: bool = True, device: str = 'cpu', dtype: torch.dtype = torch.float32,
        batch: int = BATCH, tokens: int = TOKENS, channels: int = CHANNELS,
        heads: int = HEADS) -> Dict:
    """Time all variants with ``clock`` (seconds); returns the JSON-schema dict (times in ms).

    ``dispatch`` selects the loop reference (see :class:`LoopMoELoRALinear`). On CUDA every
    timed call is bracketed by ``torch.cuda.synchronize()``. The sizes default to the ViT-S
    setting above (smaller ones are for tests).
    """
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
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
        key = '-'.join(map(str, cfg))
        ours = adapted_block(cfg, channels=channels, heads=heads)
        loop = place(loop_block(ours, dispatch, channels, heads))
        ours = place(ours)
        with torch.no_grad():  # the reference must compute the same function
            diff = (ours(x, 0) - loop(x, 0)).abs().max().item()
        if diff > tolerance:
            raise RuntimeError(f'{key}: loop reference differs from the fused module by {diff}')
        variants[key] = lambda b=ours: step(b, x, 0)
        loops[f'loop:{key}'] = lambda b=loop: step(b, x, 0)
    variants.update(loops)
    multi = place(adapted_block(EXPERT_CONFIGS[0], NUM_TASKS, channels, heads))
    with torch.no_grad():  # batched multi-task must equal one pass per task
        batched = multi(x_tasks, task_index)
        diff = max((batched[t * batch:(t + 1) * batch] - multi(x, t)).abs().max().item()
                   for t in range(NUM_TASKS))
    if diff > tolerance:
        raise RuntimeError(f'batched multi-task differs from sequential by {diff}')
    variants['batched'] = lambda: step(multi, x_tasks, task_index)

    def sequential():
        for task in range(NUM_TASKS):
            step(multi, x, task)

    variants['sequential'] = sequential

    times: Dict[str, List[float]] = {name: [] for name in variants}
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    for _ in range(repeats):
        for name, fn in variants.items():
            sync()
            start = clock()
            fn()
            sync()
            times[name].append((clock() - start) * 1000)
    med = {name: statistics.median(values) for name, values in times.items()}

    def paired(num: str, den: str) -> float:
        """Median over rounds of the ratio of two variants timed in the same round."""
        return statistics.median(a / b for a, b in zip(times[num], times[den]))

    result = dict(plain_ms=round(med['plain'], 2), configs={})
    for cfg in EXPERT_CONFIGS:
        key = '-'.join(map(str, cfg))
        result['configs'][key] = dict(
            ms=round(med[key], 2), ratio_to_plain=round(paired(key, 'plain'), 3),
            loop_ms=round(med[f'loop:{key}'], 2),
            loop_over_ours=round(paired(f'loop:{key}', key), 2))
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


def main(argv=None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--json', action='store_true', help='print the result as JSON')
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
                        help='parameter and activation dtype')
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
    result = run(args.repeats, clock=clock, dispatch=args.loop == 'dispatch',
                 device=args.device, dtype=getattr(torch, args.dtype))
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result, torch.get_num_threads(), args.repeats, args.clock, args.loop,
                    args.device, args.dtype)
    return result


if __name__ == '__main__':
    main()
