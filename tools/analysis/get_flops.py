"""Forward FLOPs and parameters of the models of configs (all tasks, one image).

Builds ``cfg.model`` of each config (parameters counted by :mod:`count_params`, whose
``build_model`` and ``count_parameters`` are imported, not repeated), runs one random image of
``--shape H W`` (default 512 512) through the whole model in ``mode='tensor'`` (backbone for
every task plus every decode head, the raw head outputs; no post-processing) under
``torch.utils.flop_counter.FlopCounterMode``, in eval mode without gradients, and prints:

- ``GFLOPs``: total forward FLOPs / 1e9. **FLOPs = 2 x MACs**: ``FlopCounterMode`` counts a
  multiply-add as two operations (a matmul of ``(m, k) @ (k, n)`` is ``2 m k n``), so halve the
  numbers to compare with papers that report MACs under the name "FLOPs" (fvcore, mmcv's
  ``get_model_complexity_info``).
- ``backbone GFLOPs``: ``model.extract_feat`` alone (the backbone for every task, and the neck);
  ``heads GFLOPs`` = total - backbone.
- ``params (M)`` / ``trainable (M)``: ``count_params.count_parameters`` (the JSON rows also
  carry its ``adapters`` and ``routers`` counts).

What is counted: matrix products (``mm``, ``addmm``, ``bmm``, ``baddbmm``, what ``linear`` and
``einsum`` decompose into), convolutions and scaled dot-product attention. torch has no formula
for three of the operators these models run, added here: the CPU attention kernel
``_scaled_dot_product_flash_attention_for_cpu`` (the two ``Lq x Lk``-sized products per head)
and the in-place ``addmm_`` / ``baddbmm_`` (the fused LoRA-MoE path adds its adapter output into
the base output in place). Element-wise work (norms, activations,
softmax, resizes) is not counted, as in the usual FLOP tables. The operators go through custom
autograd Functions too (the fused LoRA-MoE path), so adapters and routers count as implemented:
the fused path multiplies every expert's ranks and masks the unselected ones, so an ``E/k/S/r``
adapter costs what a rank ``(E+S)r`` LoRA costs, plus its router. An operator that looks like a
matrix product or a convolution but has no formula is listed under ``uncounted ops`` (and in the
JSON), so a gap in the count is visible.

Example::

    python tools/analysis/get_flops.py configs/ase/ase_vit-s16_16-3-1-4_40k_pascal-mt-512x512.py
    python tools/analysis/get_flops.py configs/nyud/*.py --shape 448 576 --json
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Sequence, Set, Tuple

import torch
import torch.nn as nn
from prettytable import PrettyTable
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # count_params.py, beside this file
from count_params import build_model, count_parameters  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

aten = torch.ops.aten

#: Operator names (``aten.`` and a trailing ``_`` stripped) that carry FLOPs, and prefixes /
#: substrings of such names: an operator among them without a formula is reported as uncounted.
_HEAVY_OPS = frozenset(('mm', 'addmm', 'bmm', 'baddbmm', 'addbmm', 'matmul', 'linear', 'einsum',
                        'mv', 'addmv', 'dot', 'tensordot', 'bilinear'))
_HEAVY_PREFIXES = ('conv', '_conv', 'cudnn_conv', 'mkldnn_conv', 'mkldnn_linear')
_HEAVY_SUBSTRINGS = ('attention', '_mm', 'matmul')


def sdpa_flops(query_shape: Sequence[int], key_shape: Sequence[int],
               value_shape: Sequence[int], *args, out_shape=None, **kwargs) -> int:
    """FLOPs of scaled dot-product attention, ``2 x MACs`` of its two batched products.

    Args:
        query_shape (Sequence[int]): ``(B, H, Lq, d)``.
        key_shape (Sequence[int]): ``(B, H, Lk, d)``.
        value_shape (Sequence[int]): ``(B, H, Lk, dv)``.

    Returns:
        int: ``2 B H Lq Lk d`` (scores) + ``2 B H Lq Lk dv`` (weighted values).
    """
    *batch, len_q, dim_q = query_shape
    len_k = key_shape[-2]
    dim_v = value_shape[-1]
    groups = 1
    for size in batch:
        groups *= size
    return 2 * groups * len_q * len_k * (dim_q + dim_v)


def addmm_flops(self_shape: Sequence[int], mat1_shape: Sequence[int],
                mat2_shape: Sequence[int], *args, out_shape=None, **kwargs) -> int:
    """FLOPs of ``self + mat1 @ mat2`` (in place or not): ``2 m k n`` for ``(m, k) @ (k, n)``;
    batched ``(b, m, k) @ (b, k, n)`` (``baddbmm``, ``addbmm``): ``2 b m k n``. The addition is
    not counted, as for torch's ``addmm``."""
    *batch, rows, inner = mat1_shape
    groups = 1
    for size in batch:
        groups *= size
    return 2 * groups * rows * inner * mat2_shape[-1]


def _custom_formulas() -> dict:
    """Formulas for operators torch's counter leaves at zero: the CPU attention kernel and the
    in-place / reducing matmul variants (the fused LoRA-MoE path accumulates its adapter output
    with ``addmm_``)."""
    formulas = {}
    for name, formula in (('_scaled_dot_product_flash_attention_for_cpu', sdpa_flops),
                          ('addmm_', addmm_flops), ('baddbmm_', addmm_flops),
                          ('addbmm', addmm_flops), ('addbmm_', addmm_flops)):
        packet = getattr(aten, name, None)
        if packet is not None:
            formulas[packet] = formula
    return formulas


def _is_heavy(op) -> bool:
    """Whether operator ``op`` (an overload packet) should carry FLOPs."""
    name = str(op).split('.')[-1].rstrip('_')
    return (name in _HEAVY_OPS or name.startswith(_HEAVY_PREFIXES)
            or any(part in name for part in _HEAVY_SUBSTRINGS))


class _OpRecorder(TorchDispatchMode):
    """Record the overload packets of the aten operators that run (below the FLOP counter)."""

    def __init__(self):
        super().__init__()
        self.ops: Set = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func._overloadpacket)
        return func(*args, **(kwargs or {}))


def _count(fn, registry_extra: dict) -> Tuple[int, Dict[str, int], List[str]]:
    """Run ``fn()`` under a FLOP counter; return total, per-operator FLOPs, uncounted heavy ops."""
    recorder = _OpRecorder()
    with recorder:  # entered first, so it sees what the counter executes (after decompositions)
        with FlopCounterMode(display=False, custom_mapping=registry_extra) as counter:
            fn()
    per_op = {str(op).replace('aten.', ''): int(flops)
              for op, flops in counter.get_flop_counts().get('Global', {}).items()}
    known = set(counter.flop_registry)
    uncounted = sorted(str(op) for op in recorder.ops if op not in known and _is_heavy(op))
    return int(counter.get_total_flops()), per_op, uncounted


def model_flops(model: nn.Module, shape: Tuple[int, int]) -> Dict:
    """Forward FLOPs of ``model`` on one random ``(1, 3, H, W)`` image.

    Args:
        model (nn.Module): An mmengine segmentor (``forward(inputs, data_samples, mode)`` and
            ``extract_feat(inputs)``), e.g. ``MultiTaskEncoderDecoder``.
        shape (tuple[int, int]): ``(H, W)`` in pixels.

    Returns:
        dict: ``flops`` (whole model, ``mode='tensor'``), ``backbone_flops``
        (``extract_feat``), ``head_flops`` (the difference), ``per_op`` (operator -> FLOPs of
        the whole model) and ``uncounted_ops``. FLOPs = 2 x MACs.
    """
    if not callable(getattr(model, 'extract_feat', None)):
        raise TypeError(f'get_flops: {type(model).__name__} is not a segmentor (no extract_feat); '
                        f'the config\'s `model` must be a whole model such as '
                        f'MultiTaskEncoderDecoder')
    height, width = shape
    if height < 1 or width < 1:
        raise ValueError(f'--shape {height} {width}: sizes must be positive')
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device('cpu')
    inputs = torch.randn(1, 3, height, width, device=device)
    extra = _custom_formulas()
    model.eval()
    with torch.no_grad():
        total, per_op, uncounted = _count(lambda: model(inputs, None, mode='tensor'), extra)
        backbone, _, _ = _count(lambda: model.extract_feat(inputs), extra)
    return dict(flops=total, backbone_flops=backbone, head_flops=total - backbone,
                per_op=per_op, uncounted_ops=uncounted)


def main(argv: Sequence[str] = None) -> List[Dict]:
    parser = argparse.ArgumentParser(
        description='Forward FLOPs (all tasks, one image; FLOPs = 2 x MACs) and parameters')
    parser.add_argument('configs', nargs='+', help='config files')
    parser.add_argument('--shape', nargs=2, type=int, default=[512, 512], metavar=('H', 'W'),
                        help='input image height and width (default: 512 512)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of every config, key=value (xxx=yyy format)')
    parser.add_argument('--json', action='store_true', help='print JSON rows instead')
    args = parser.parse_args(argv)

    rows = []
    for config in args.configs:
        model = build_model(config, args.cfg_options)
        counts = count_parameters(model)
        flops = model_flops(model, tuple(args.shape))
        rows.append(dict(config=config, shape=list(args.shape), gflops=flops['flops'] / 1e9,
                         backbone_gflops=flops['backbone_flops'] / 1e9,
                         head_gflops=flops['head_flops'] / 1e9, flops=flops['flops'],
                         params=counts['total'], trainable=counts['trainable'],
                         adapters=counts['adapters'], routers=counts['routers'],
                         per_op=flops['per_op'], uncounted_ops=flops['uncounted_ops']))
    if args.json:
        print(json.dumps(rows))
        return rows
    table = PrettyTable(['config', 'input', 'GFLOPs', 'backbone GFLOPs', 'heads GFLOPs',
                         'params (M)', 'trainable (M)'])
    table.align = 'r'
    table.align['config'] = 'l'
    for row in rows:
        table.add_row([osp.basename(row['config']), '{}x{}'.format(*row['shape']),
                       f"{row['gflops']:.2f}", f"{row['backbone_gflops']:.2f}",
                       f"{row['head_gflops']:.2f}", f"{row['params'] / 1e6:.2f}",
                       f"{row['trainable'] / 1e6:.3f}"])
    print(table)
    print('FLOPs = 2 x MACs (torch.utils.flop_counter); matmuls, convolutions and attention.')
    for row in rows:
        if row['uncounted_ops']:
            print(f"{osp.basename(row['config'])}: uncounted ops (no FLOP formula): "
                  f"{', '.join(row['uncounted_ops'])}")
    return rows


if __name__ == '__main__':
    main()
