"""Peak memory of one training step of an ASE backbone, with and without activation checkpointing.

Each setting runs in its own process: build ``ASEViT`` (``--arch``, 16/3/1/4 experts beside every
FFN, LoRA r=4 on qkv/proj, task embeddings, random weights), one batched multi-task forward of
``--tasks`` tasks at ``--size``², a loss over every output and the router loss, backward. Reported:
the peak resident memory of the step above the memory after building, in GiB (CPU: Linux's
``VmHWM`` reset to the current size before the step through ``/proc/self/clear_refs``, so a
higher transient of the build does not hide the step's peak, and glibc's mmap threshold fixed
(``MALLOC_MMAP_THRESHOLD_``) so that large freed blocks leave the resident set instead of being
reused unseen; CUDA: ``torch.cuda.max_memory_allocated``), and the step time. The heads are left out (light
next to the backbone at these sizes); the optimizer state is left out (it holds the adapters
only: a few MB).

    python tools/analysis/benchmark_memory.py --arch vit-b --batch-sizes 1 2 --size 512
    python tools/analysis/benchmark_memory.py --arch vit-l --batch-sizes 1 2 4 --device cuda
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # a clone


def _status_kib(field: str) -> int:
    """A ``/proc/self/status`` field in KiB (``VmRSS``, ``VmHWM``)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'/proc/self/status has no {field}')


def _reset_peak_rss() -> int:
    """Reset the resident high-water mark to the current size; returns that size in bytes."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    return _status_kib('VmRSS') * 1024


def one_step(arch: str, batch: int, size: int, tasks: int, with_cp: bool, device: str) -> dict:
    import torch

    from mmase.models.backbones import ASEViT
    names = tuple(f'task{i}' for i in range(tasks))
    model = ASEViT(arch=arch, img_size=size, patch_size=16, out_indices=(-1, ), tasks=names,
                   lora=dict(rank=4), task_embedding=True, with_cp=with_cp,
                   adapter=dict(mi_loss_weight=0.005)).to(device).train()
    x = torch.randn(batch, 3, size, size, device=device)
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = _reset_peak_rss()
    start = time.perf_counter()
    feats = model.forward_tasks(x)
    loss = sum(f.float().pow(2).mean() for maps in feats.values() for f in maps)
    (loss + sum(model.pop_aux_losses().values())).backward()
    if device == 'cuda':
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = _status_kib('VmHWM') * 1024 - before
    return dict(arch=arch, batch=batch, size=size, tasks=tasks, with_cp=with_cp, device=device,
                peak_gib=peak / 2**30, seconds=time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', nargs='+', default=['vit-b'])
    parser.add_argument('--batch-sizes', nargs='+', type=int, default=[1, 2])
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--tasks', type=int, default=5)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--one', help=argparse.SUPPRESS)  # a child process: one setting
    args = parser.parse_args()
    if args.one:
        arch, batch, with_cp = json.loads(args.one)
        print(json.dumps(one_step(arch, batch, args.size, args.tasks, with_cp, args.device)))
        return
    print(f'| arch | batch | with_cp | peak step memory (GiB, {args.device}) | step (s) |')
    print('| --- | --- | --- | --- | --- |')
    for arch in args.arch:
        for batch in args.batch_sizes:
            for with_cp in (False, True):
                out = subprocess.run(
                    [sys.executable, __file__, '--one', json.dumps([arch, batch, with_cp]),
                     '--size', str(args.size), '--tasks', str(args.tasks), '--device',
                     args.device], capture_output=True, text=True,
                    env=dict(os.environ, MALLOC_MMAP_THRESHOLD_='131072'))
                if out.returncode != 0:
                    print(f'| {arch} | {batch} | {with_cp} | failed: '
                          f'{out.stderr.strip().splitlines()[-1]} | |')
                    continue
                row = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"| {arch} | {batch} | {with_cp} | {row['peak_gib']:.2f} | "
                      f"{row['seconds']:.1f} |", flush=True)


if __name__ == '__main__':
    main()
