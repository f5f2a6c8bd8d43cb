"""Peak memory of one training step of an ASE backbone, with and without activation checkpointing.

Each setting runs in its own process: build ``ASEViT`` (``--arch``, 16/3/1/4 experts beside every
FFN, LoRA r=4 on qkv/proj, task embeddings, random weights with seed 0, float32), one batched
multi-task forward of ``--tasks`` tasks at ``--size``², a loss over every output and the router
loss, backward. Reported per row, in GiB: ``model`` (all parameters and buffers) and ``step``,
the peak of the memory the step allocated and had not yet freed (activations kept for backward,
backward's transient, the trainable parameters' gradients; not the weights, not the input), and
the step time (with the measurement's overhead).

``step`` is an allocator's count of live tensor bytes, not the process size:

* CPU (``--measure tensors``, the default): the step runs under ``torch.profiler`` with
  ``profile_memory=True``, which makes c10's CPU allocator report every allocation and free
  (address, signed bytes). In time order, the step's blocks are summed (a free of a block
  allocated before the step is left out: the garbage collector may free an earlier model's
  tensors mid-step) and the maximum taken: exact to the byte, the same run to run, independent
  of glibc. Not seen: memory that libraries take past c10 (oneDNN / BLAS
  scratch).
* CPU (``--measure rss``): Linux's resident high-water mark ``VmHWM``, reset before the step
  (``/proc/self/clear_refs``), with glibc's mmap threshold fixed (``MALLOC_MMAP_THRESHOLD_``).
  For comparison only: glibc serves allocations from freed, still-resident blocks, so ViT-B with
  ``with_cp`` at batch 2 read 1.0 to 4.4 GiB (tensors: 0.97).
* CUDA: ``torch.cuda.max_memory_allocated`` above the allocation before the step (the caching
  allocator's live blocks; its reserved memory, the CUDA context and workspaces come on top).

On CPU a setting is run only if ``model`` plus 1.25 times its ``step`` predicted from the smaller
batches measured before it (``a + b * batch``, least squares; one point: ``b = step / batch``;
the smallest batch is always run) stays under ``--max-gib`` (default: 80 % of ``MemAvailable``)
and its batch is at most ``--max-run-batch``; otherwise its row is the prediction, marked
``extrapolated``. The heads and the optimizer state are left out (light next to the backbone at
these sizes; the optimizer holds the adapters only: a few MB).

    python tools/analysis/benchmark_memory.py --arch vit-b vit-l --batch-sizes 1 2 4 8
    python tools/analysis/benchmark_memory.py --arch vit-l --batch-sizes 8 --with-cp on
    python tools/analysis/benchmark_memory.py --arch vit-b vit-l --batch-sizes 1 2 4 8 --device cuda
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # a clone

GIB = 2**30


def cpu_tensor_peak(step: Callable[[], Any]) -> Tuple[Any, int]:
    """Run ``step()``; return its result and the peak, in bytes, of the CPU tensor memory that
    the step allocated and had not yet freed (c10's allocations and frees, from the profiler)."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = step()
    events = []  # (time ns, order seen, signed bytes, address)
    stack = list(reversed(prof.profiler.kineto_results.experimental_event_tree()))
    while stack:
        event = stack.pop()
        stack.extend(reversed(event.children))
        kind, fields = event.typed
        if kind == _EventType.Allocation and fields.device.type == 'cpu':
            events.append((event.start_time_ns, len(events), fields.alloc_size, fields.ptr))
    live, peak, own = 0, 0, set()
    for _, _, size, ptr in sorted(events):
        if size > 0:
            own.add(ptr)
        elif ptr in own:  # a free of a block allocated before the step is left out
            own.discard(ptr)
        else:
            continue
        live += size
        peak = max(peak, live)
    return result, peak


def _status_kib(field: str) -> int:
    """A ``/proc/self/status`` or ``/proc/meminfo`` field in KiB (``VmRSS``, ``VmHWM``)."""
    path = '/proc/meminfo' if field == 'MemAvailable' else '/proc/self/status'
    with open(path) as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{path} has no {field}')


def _rss_peak(step: Callable[[], Any]) -> Tuple[Any, int]:
    """Run ``step()``; return its result and the resident high-water mark above the start."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # VmHWM := VmRSS
    before = _status_kib('VmRSS') * 1024
    result = step()
    return result, _status_kib('VmHWM') * 1024 - before


def _cuda_peak(step: Callable[[], Any]) -> Tuple[Any, int]:
    import torch
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    result = step()
    torch.cuda.synchronize()
    return result, torch.cuda.max_memory_allocated() - before


def one_step(arch, batch: int, size: int, tasks: int, with_cp: bool, device: str,
             measure: str = 'tensors') -> dict:
    """One setting's row: ``model_gib``, ``peak_gib`` (the step above the built model and its
    input), ``seconds`` (the step, with the measurement's overhead)."""
    import torch

    from mmase.models.backbones import ASEViT
    torch.manual_seed(0)  # reproducible weights (no tensor's shape depends on them)
    names = tuple(f'task{i}' for i in range(tasks))
    model = ASEViT(arch=arch, img_size=size, patch_size=16, out_indices=(-1, ), tasks=names,
                   lora=dict(rank=4), task_embedding=True, with_cp=with_cp,
                   adapter=dict(mi_loss_weight=0.005)).to(device).train()
    model_bytes = sum(t.numel() * t.element_size()
                      for t in (*model.parameters(), *model.buffers()))
    x = torch.randn(batch, 3, size, size, device=device)

    def step():
        feats = model.forward_tasks(x)
        loss = sum(f.float().pow(2).mean() for maps in feats.values() for f in maps)
        (loss + sum(model.pop_aux_losses().values())).backward()

    peaks = dict(tensors=cpu_tensor_peak, rss=_rss_peak)
    measured = _cuda_peak if device == 'cuda' else peaks[measure]
    start = time.perf_counter()
    _, peak = measured(step)
    return dict(arch=arch, batch=batch, size=size, tasks=tasks, with_cp=with_cp, device=device,
                measure='cuda_allocated' if device == 'cuda' else measure,
                model_gib=model_bytes / GIB, peak_gib=peak / GIB,
                seconds=time.perf_counter() - start)


def fit_line(points: List[Tuple[int, float]]) -> Tuple[float, float]:
    """``(a, b)`` of ``peak = a + b * batch`` by least squares; one point: ``(0, peak / batch)``."""
    if len(points) == 1:
        (batch, peak), = points
        return 0.0, peak / batch
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x)**2 for x, _ in points)
    b = sum((x - mean_x) * (y - mean_y) for x, y in points) / var
    return mean_y - b * mean_x, b


def _row(r: Dict, kind: str) -> str:
    seconds = f"{r['seconds']:.0f}" if 'seconds' in r else ''
    return (f"| {r['arch']} | {r['batch']} | {'on' if r['with_cp'] else 'off'} | "
            f"{r['model_gib']:.2f} | {r['peak_gib']:.2f} | {r['model_gib'] + r['peak_gib']:.2f} | "
            f"{kind} | {seconds} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', nargs='+', default=['vit-b'])
    parser.add_argument('--batch-sizes', nargs='+', type=int, default=[1, 2])
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--tasks', type=int, default=5)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--measure', choices=['tensors', 'rss'], default='tensors',
                        help='CPU only: tensor bytes live in the allocator (default) or RSS')
    parser.add_argument('--with-cp', choices=['off', 'on', 'both'], default='both')
    parser.add_argument('--max-gib', type=float,
                        default=0.8 * _status_kib('MemAvailable') / 2**20,
                        help='CPU only: skip a setting predicted above this (GiB)')
    parser.add_argument('--max-run-batch', type=int, default=None,
                        help='CPU only: extrapolate larger batches instead of running them '
                        '(time: a ViT-L step with with_cp at batch 8 took 16 min on 2 cores)')
    parser.add_argument('--one', help=argparse.SUPPRESS)  # a child process: one setting
    args = parser.parse_args()
    if args.one:
        arch, batch, with_cp = json.loads(args.one)
        print(json.dumps(one_step(arch, batch, args.size, args.tasks, with_cp, args.device,
                                  args.measure)))
        return
    env = dict(os.environ)
    if args.measure == 'rss':
        env['MALLOC_MMAP_THRESHOLD_'] = '131072'
    what = 'cuda allocated' if args.device == 'cuda' else f'cpu {args.measure}'
    print(f'| arch | batch | with_cp | model (GiB) | step (GiB, {what}) | model + step (GiB) | '
          'row | step (s) |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- |')
    for arch in args.arch:
        for with_cp in dict(off=(False, ), on=(True, ), both=(False, True))[args.with_cp]:
            measured: List[Tuple[int, float]] = []
            model_gib = None
            for batch in sorted(args.batch_sizes):
                if measured and args.device != 'cuda':
                    a, b = fit_line(measured)
                    predicted = a + b * batch
                    if 1.25 * predicted + model_gib > args.max_gib:
                        why = f'over --max-gib {args.max_gib:.1f}'
                    elif args.max_run_batch is not None and batch > args.max_run_batch:
                        why = f'over --max-run-batch {args.max_run_batch}'
                    else:
                        why = None
                    if why:
                        fit = ', '.join(str(x) for x, _ in measured)
                        print(_row(dict(arch=arch, batch=batch, with_cp=with_cp,
                                        model_gib=model_gib, peak_gib=predicted),
                                   f'extrapolated ({a:.2f} + {b:.2f} x batch, from batch '
                                   f'{fit}; {why})'), flush=True)
                        continue
                out = subprocess.run(
                    [sys.executable, __file__, '--one', json.dumps([arch, batch, with_cp]),
                     '--size', str(args.size), '--tasks', str(args.tasks), '--device',
                     args.device, '--measure', args.measure], capture_output=True, text=True,
                    env=env)
                if out.returncode != 0:
                    print(f'| {arch} | {batch} | {with_cp} | failed: '
                          f'{out.stderr.strip().splitlines()[-1]} | | | | |', flush=True)
                    continue
                row = json.loads(out.stdout.strip().splitlines()[-1])
                measured.append((batch, row['peak_gib']))
                model_gib = row['model_gib']
                print(_row(row, 'measured'), flush=True)


if __name__ == '__main__':
    main()
