"""Cost of verifying a checkpoint's bytes (CRC-32 of every zip entry) against loading it.

Writes a ViT-B-sized checkpoint (random weights, timm names: 86 M float32 parameters, ~344 MB)
and times, with the file in the page cache (one warm-up read first), the median of ``--repeat``
runs of: ``torch.load(weights_only=True)`` alone; ``verify_zip_crcs`` alone; mmase's
``load_checkpoint_file`` (inspection + verification + load); and ``check_checkpoint`` followed
by ``load_checkpoint_file`` as the tools run them (the second verification is skipped)::

    python tools/analysis/checkpoint_verify_cost.py --out /tmp/vit_b.pth
"""
import argparse
import os
import statistics
import sys
import time
from collections import OrderedDict

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from mmase.engine import checkpoint_bytes  # noqa: E402
from mmase.engine.checkpoint_check import check_checkpoint, load_checkpoint_file  # noqa: E402


def vit_b_state_dict(seed: int = 0) -> OrderedDict:
    """Random weights with ViT-B/16's names and shapes (224x224, 12 blocks, width 768)."""
    generator = torch.Generator().manual_seed(seed)
    shapes = OrderedDict([('cls_token', (1, 1, 768)), ('pos_embed', (1, 197, 768)),
                          ('patch_embed.proj.weight', (768, 3, 16, 16)),
                          ('patch_embed.proj.bias', (768, ))])
    for block in range(12):
        prefix = f'blocks.{block}.'
        shapes.update({prefix + 'norm1.weight': (768, ), prefix + 'norm1.bias': (768, ),
                       prefix + 'attn.qkv.weight': (2304, 768), prefix + 'attn.qkv.bias': (2304, ),
                       prefix + 'attn.proj.weight': (768, 768), prefix + 'attn.proj.bias': (768, ),
                       prefix + 'norm2.weight': (768, ), prefix + 'norm2.bias': (768, ),
                       prefix + 'mlp.fc1.weight': (3072, 768), prefix + 'mlp.fc1.bias': (3072, ),
                       prefix + 'mlp.fc2.weight': (768, 3072), prefix + 'mlp.fc2.bias': (768, )})
    shapes.update({'norm.weight': (768, ), 'norm.bias': (768, )})
    return OrderedDict((name, torch.randn(shape, generator=generator))
                       for name, shape in shapes.items())


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        checkpoint_bytes._verified.clear()  # every run verifies again
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='/tmp/vit_b_random.pth', help='checkpoint to write')
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args()
    state = vit_b_state_dict()
    params = sum(t.numel() for t in state.values())
    torch.save(dict(state_dict=state, meta=dict()), args.out)
    size = os.path.getsize(args.out)
    del state
    with open(args.out, 'rb') as f:  # warm the page cache
        while f.read(1 << 24):
            pass
    load = timed(lambda: torch.load(args.out, map_location='cpu', weights_only=True),
                 args.repeat)
    verify = timed(lambda: checkpoint_bytes.verify_zip_crcs(args.out), args.repeat)
    full = timed(lambda: load_checkpoint_file(args.out), args.repeat)
    tools = timed(lambda: (check_checkpoint(args.out), load_checkpoint_file(args.out)),
                  args.repeat)
    print(f'{args.out}: {params / 1e6:.1f} M parameters, {size / 1e6:.1f} MB; '
          f'torch {torch.__version__}, {torch.get_num_threads()} threads, median of '
          f'{args.repeat}, file in the page cache')
    print(f'torch.load(weights_only=True)          {load:7.3f} s')
    print(f'verify_zip_crcs                        {verify:7.3f} s  '
          f'({size / verify / 1e9:.2f} GB/s)')
    print(f'load_checkpoint_file (verify + load)   {full:7.3f} s  '
          f'(+{(full - load) / load * 100:.0f} % over torch.load)')
    print(f'check_checkpoint + load_checkpoint_file {tools:6.3f} s  (the tools: one verification)')


if __name__ == '__main__':
    main()
