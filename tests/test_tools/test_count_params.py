"""tools/analysis/count_params.py on a tiny ASEViT config written to a tmp dir."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis', 'count_params.py')

CONFIG = """
custom_imports = dict(imports=['mmase'], allow_failed_imports=False)
default_scope = 'mmseg'
model = dict(type='ASEViT', arch=dict(embed_dims=32, num_layers=2, num_heads=2), img_size=32,
             patch_size=8, tasks=('semseg', 'sal'),
             adapter=dict(num_experts=4, top_k=2, num_shared=1, rank=2), lora=dict(rank=2),
             task_embedding=True)
"""
# Plain ViT (dim 32, MLP 128, 2 blocks, 4x4 patches + cls): patch conv 3*8*8*32 + 32 = 6176,
# cls 32, pos 17*32 = 544, per block norms 2*64 + qkv 3168 + proj 1056 + fc1 4224 + fc2 4128
# = 12704, final norm 64 -> 32224.
BASE = 6176 + 32 + 544 + 2 * 12704 + 64
# Experts 4/2/1/2 beside each FFN (d -> d): N r (d + d) = 4*2*64 = 512 per block; plain LoRA
# r=2 on qkv (32 -> 96) and proj (32 -> 32): 2*(32 + 96) + 2*(32 + 32) = 384 per block.
EXPERTS = 2 * 512
LORA = 2 * 384
ADAPTERS = EXPERTS + LORA
# Routers: T N d = 2*4*32 = 256 per block; task embeddings T d = 2*32.
ROUTERS = 2 * 256 + 2 * 32


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('count_params_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def config(tmp_path):
    path = tmp_path / 'tiny_ase_vit.py'
    path.write_text(CONFIG)
    return str(path)


def test_counts_by_hand(tool, config, capsys):
    rows = tool.main([config])
    assert rows == [dict(config=config, total=BASE + ADAPTERS + ROUTERS,
                         trainable=ADAPTERS + ROUTERS, adapters=ADAPTERS, lora=LORA,
                         routers=ROUTERS, experts='4/2/1/2')]
    out = capsys.readouterr().out
    assert 'tiny_ase_vit.py' in out and f'{BASE + ADAPTERS + ROUTERS:,}' in out
    assert '4/2/1/2' in out
    assert f'{ADAPTERS:,}' in out and f'{ROUTERS:,}' in out


def test_cfg_options_and_several_configs(tool, config, tmp_path):
    other = tmp_path / 'other.py'
    other.write_text(CONFIG.replace("'sal'", "'sal', 'edge'"))
    rows = tool.main([config, str(other), '--cfg-options', 'model.adapter.rank=4',
                      'model.trainable=[norm]'])
    norms = 2 * 2 * 64 + 64
    assert rows[0]['adapters'] == 2 * EXPERTS + LORA and rows[0]['experts'] == '4/2/1/4'
    assert rows[0]['routers'] == ROUTERS
    assert rows[0]['trainable'] == 2 * EXPERTS + LORA + ROUTERS + norms
    assert rows[1]['routers'] == ROUTERS * 3 // 2  # three task routers and embeddings
    assert rows[1]['total'] == BASE + 2 * EXPERTS + LORA + ROUTERS * 3 // 2


def test_missing_config(tool, tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.py'):
        tool.main([str(tmp_path / 'nope.py')])


def test_command_line_json(config):
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    proc = subprocess.run([sys.executable, TOOL, config, '--json'], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    assert rows[0]['adapters'] == ADAPTERS and rows[0]['total'] == BASE + ADAPTERS + ROUTERS


# MLP experts on block 1 only (hidden 128, dim 32, T = 2), no LoRA adapters.
MLP_MOE_CONFIG = CONFIG.replace(
    'adapter=dict(num_experts=4, top_k=2, num_shared=1, rank=2), lora=dict(rank=2),\n'
    '             task_embedding=True)',
    'adapter=None, mlp_moe={mlp_moe})')
MLP_COPY = 128 * 32 + 128 + 32 * 128 + 32  # one copy of the block's MLP weights and biases


@pytest.mark.parametrize('mlp_moe,adapters,routers,frozen_copy', [
    # FGMoE: one copy of the MLP per task (sliced into experts); router over the 3 routed
    # slices + the global expert, per task: 2 * 4 * 32. The global expert is the frozen MLP.
    ("dict(type='FGMoE', blocks=(1,), num_experts=4, top_k=2, num_shared=1)",
     2 * MLP_COPY, 2 * 4 * 32, 1),
    # Task-MoE with per-task routers: 3 experts (MLP copies), router 2 * 3 * 32.
    ("dict(type='TaskMoE', blocks=(1,), num_experts=3, top_k=1)", 3 * MLP_COPY, 2 * 3 * 32, 0),
    # Task-MoE with a task embedding: one shared router 3 * 32 plus the embedding 2 * 32.
    ("dict(type='TaskMoE', blocks=(1,), num_experts=3, top_k=1, gating='task_embedding')",
     3 * MLP_COPY, 3 * 32 + 2 * 32, 0),
])
def test_mlp_experts_count_as_adapters(tool, tmp_path, mlp_moe, adapters, routers,
                                       frozen_copy):
    path = tmp_path / 'mlp_moe.py'
    path.write_text(MLP_MOE_CONFIG.format(mlp_moe=mlp_moe))
    row = tool.main([str(path)])[0]
    assert row['adapters'] == adapters
    assert row['routers'] == routers
    # Block 1's own MLP is replaced by the experts unless it stays as the global expert.
    assert row['total'] == BASE - (1 - frozen_copy) * MLP_COPY + adapters + routers
    assert row['trainable'] == adapters + routers


@pytest.mark.parametrize('placement,experts,routers', [
    # per-linear: N r (d_in + d_out) on qkv 32->96, proj 32->32, fc1 32->128, fc2 128->32
    ('linear', 4 * 2 * (128 + 64 + 160 + 160), 2 * 4 * (32 + 32 + 32 + 128)),
    ('ffn', 4 * 2 * 64, 2 * 4 * 32),  # one expert set d -> d beside the FFN
])
def test_placements_one_key_apart(tool, tmp_path, placement, experts, routers):
    path = tmp_path / f'{placement}.py'
    path.write_text(CONFIG.replace(
        'adapter=dict(num_experts=4, top_k=2, num_shared=1, rank=2), lora=dict(rank=2),\n'
        '             task_embedding=True)',
        f"adapter=dict(placement='{placement}', num_experts=4, top_k=2, num_shared=1, rank=2))"))
    row = tool.main([str(path)])[0]
    assert (row['adapters'], row['lora'], row['routers']) == (2 * experts, 0, 2 * routers)
