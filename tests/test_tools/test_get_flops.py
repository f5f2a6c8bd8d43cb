"""tools/analysis/get_flops.py: FLOPs of a 1-block ViT segmentor counted by hand."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis', 'get_flops.py')

# One ViT block (dim 32, 2 heads, MLP 128), 8 px patches; FCN head: one 3x3 conv 32 -> 16, BN,
# then a 1x1 conv 16 -> 5 classes. Frozen ViT (adapter=None) unless ADAPTER is filled in.
CONFIG = """
custom_imports = dict(imports=['mmase'], allow_failed_imports=False)
default_scope = 'mmseg'
tasks = {tasks}
head = dict(type='FCNHead', in_channels=32, in_index=0, channels=16, num_convs=1,
            kernel_size=3, concat_input=False, num_classes=5, dropout_ratio=0.0,
            norm_cfg=dict(type='BN'))
model = dict(
    type='MultiTaskEncoderDecoder', tasks=tasks,
    data_preprocessor=dict(type='MultiTaskDataPreProcessor'),
    backbone=dict(type='ASEViT', arch=dict(embed_dims=32, num_layers=1, num_heads=2),
                  img_size=32, patch_size=8, out_indices=(0, ), tasks=tasks,
                  adapter={adapter}{extra}),
    decode_heads={{t: head for t in tasks}})
"""


def macs_by_hand(height: int, width: int, num_tasks: int = 1, lora_rank: int = 0,
                 passes: int = None) -> dict:
    """Multiply-accumulates of CONFIG's model on one (height, width) image; the block runs
    ``passes`` times (default: once per task)."""
    passes = num_tasks if passes is None else passes
    grid = (height // 8) * (width // 8)
    tokens = grid + 1  # + class token
    patch = grid * 32 * (3 * 8 * 8)  # conv 3 -> 32, 8x8 kernel, stride 8
    qkv = tokens * 32 * 96
    attention = 2 * 2 * tokens * tokens * 16  # 2 heads of 16 dims: q k^T and attn v
    proj = tokens * 32 * 32
    mlp = tokens * 32 * 128 + tokens * 128 * 32
    lora = tokens * (32 * lora_rank + lora_rank * 96)  # on qkv: x A^T, then (x A^T) B^T
    block = qkv + attention + proj + mlp + lora
    head = grid * 32 * 16 * 9 + grid * 16 * 5  # 3x3 conv (padding 1) + 1x1 classifier
    backbone = patch + passes * block  # the patch embedding runs once for all tasks
    return dict(backbone=backbone, heads=num_tasks * head, total=backbone + num_tasks * head)


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('get_flops_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_config(tmp_path, name='tiny_seg.py', tasks=('semseg', ), adapter=None, **backbone):
    path = tmp_path / name
    extra = ''.join(f', {k}={v!r}' for k, v in backbone.items())
    path.write_text(CONFIG.format(tasks=repr(tuple(tasks)), adapter=repr(adapter), extra=extra))
    return str(path)


def test_one_block_vit_by_hand(tool, tmp_path, capsys):
    config = write_config(tmp_path)
    rows = tool.main([config, '--shape', '32', '48'])
    macs = macs_by_hand(32, 48)
    assert macs["total"] == 607168  # 4 x 6 patches: 1 + 24 tokens
    row = rows[0]
    assert row['flops'] == 2 * macs['total']  # FLOPs = 2 x MACs
    assert row['gflops'] == pytest.approx(2 * macs['total'] / 1e9)
    assert row['backbone_gflops'] == pytest.approx(2 * macs['backbone'] / 1e9)
    assert row['head_gflops'] == pytest.approx(2 * macs['heads'] / 1e9)
    assert row['shape'] == [32, 48] and row['uncounted_ops'] == []
    # attention is counted (torch has no formula for its CPU kernel; the tool adds one)
    attention = 2 * (2 * 2 * 25 * 25 * 16)
    assert sum(v for k, v in row['per_op'].items() if 'attention' in k or k == 'bmm') \
        == attention
    # parameters come from count_params: the frozen ViT and the trainable head
    vit = 3 * 64 * 32 + 32 + 32 + 17 * 32 + 2 * 64 + 3168 + 1056 + 4224 + 4128 + 64
    head = 32 * 16 * 9 + 2 * 16 + 16 * 5 + 5  # conv (no bias before BN), BN, classifier
    assert row['params'] == vit + head and row['trainable'] == head
    out = capsys.readouterr().out
    assert 'tiny_seg.py' in out and '32x48' in out and 'FLOPs = 2 x MACs' in out


@pytest.mark.parametrize('task_embedding,passes', [(False, 1), (True, 2)])
def test_all_tasks_and_lora_adapter_count(tool, tmp_path, task_embedding, passes):
    """Two tasks, a rank-2 LoRA on qkv (its two skinny matmuls per token, whatever code path
    computes them); heads run per task, the patch embedding once. LoRA shared by the tasks
    and no task embedding: the blocks run once for both tasks; with task embeddings the
    features differ per task and the blocks run twice (one batched pass of 2 N samples)."""
    config = write_config(tmp_path, tasks=('semseg', 'sal'), adapter=None,
                          lora=dict(rank=2, targets=('qkv', )), task_embedding=task_embedding)
    row = tool.main([config, '--shape', '32', '32', '--json'])[0]
    macs = macs_by_hand(32, 32, num_tasks=2, lora_rank=2, passes=passes)
    assert row['flops'] == 2 * macs['total']
    assert row['backbone_gflops'] == pytest.approx(2 * macs['backbone'] / 1e9)
    assert row['uncounted_ops'] == []


def test_default_shape_is_512(tool, tmp_path):
    row = tool.main([write_config(tmp_path), '--json'])[0]
    assert row['shape'] == [512, 512] and row['flops'] == 2 * macs_by_hand(512, 512)['total']


def test_inplace_matmuls_are_counted(tool):
    """``addmm_`` / ``baddbmm_`` have no torch formula; the tool adds them (2 m k n)."""
    out, a, b = torch.zeros(4, 5), torch.randn(4, 3), torch.randn(3, 5)
    batched, c, d = torch.zeros(2, 4, 5), torch.randn(2, 4, 3), torch.randn(2, 3, 5)
    with FlopCounterMode(display=False, custom_mapping=tool._custom_formulas()) as counter:
        out.addmm_(a, b)
        batched.baddbmm_(c, d)
        F.scaled_dot_product_attention(torch.randn(1, 2, 6, 4), torch.randn(1, 2, 7, 4),
                                       torch.randn(1, 2, 7, 3))
    assert counter.get_total_flops() == 2 * 4 * 3 * 5 + 2 * 2 * 4 * 3 * 5 + 2 * 2 * 6 * 7 * (4 + 3)


def test_uncounted_heavy_op_is_reported(tool):
    class Model(torch.nn.Module):
        def extract_feat(self, x):
            return x

        def forward(self, x, data_samples=None, mode='tensor'):
            return torch.ops.aten.addmv(torch.zeros(3), torch.randn(3, 4), torch.randn(4))

    result = tool.model_flops(Model(), (8, 8))
    assert result['flops'] == 0 and result['uncounted_ops'] == ['aten.addmv']


def test_bad_model_and_missing_config(tool, tmp_path):
    with pytest.raises(TypeError, match='not a segmentor'):
        tool.model_flops(torch.nn.Linear(2, 2), (8, 8))
    with pytest.raises(FileNotFoundError, match='nope.py'):
        tool.main([str(tmp_path / 'nope.py')])


def test_command_line_json(tmp_path):
    config = write_config(tmp_path)
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, TOOL, config, '--shape', '32', '32', '--json'],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    assert rows[0]['flops'] == 2 * macs_by_hand(32, 32)['total']
