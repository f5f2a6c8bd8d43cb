"""The analysis tools on the toy run's checkpoint (``toy_run`` in conftest.py).

- tools/analysis/expert_usage.py: figures open at their sizes, the JSON's numbers are
  consistent (selection frequencies sum to top_k, token counts match the images, gate masses,
  a symmetric similarity matrix that recomputes by hand), clear errors without routing.
- tools/analysis/delta_m.py on the metrics JSON the run wrote: agrees with the evaluator's Δm.
- tools/analysis/count_params.py on the run's config: agrees with the checkpoint's tensors and
  with the parameter formula of the budget (E+S) r (d_in + d_out).
- tools/test.py --show-dir: one PNG per validation image.
"""
import importlib.util
import json
import os
import os.path as osp

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image
from tool_helpers import ROOT, TINY, TOY_DATA, run, toy_ids

# The toy config at tiny size (TINY): ViT of 2 blocks, 64 dims, MLP ratio 2, patch 8; ASE
# 16/3/1/4 beside the FFN of every block (16 experts with the shared one: 15 sparse), plain
# LoRA r=4 on qkv/proj, task embeddings; 5 tasks; 20 val images.
TASKS = ['semseg', 'human_parts', 'sal', 'normals', 'edge']
LAYERS = ['blocks.0.mlp', 'blocks.1.mlp']
TOP_K, EXPERTS, SHARED, RANK, PATCH, SCALE = 3, 16, 1, 4, 8, 64
SPARSE = EXPERTS - SHARED


def load_tool(name):
    spec = importlib.util.spec_from_file_location(f'{name}_tool',
                                                  osp.join(ROOT, 'tools', 'analysis', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tokens_of(image_ids, batch_size=1):
    """Tokens one task routes through one layer for these val images (hand-computed): the test
    pipeline resizes each image to fit 64x64 keeping its ratio (mmcv rounding), the
    preprocessor pads a batch to its largest image, the ViT cuts 8x8 patches (floor) and adds
    the class token."""
    sizes = []
    for image_id in image_ids:
        width, height = Image.open(osp.join(TOY_DATA, 'JPEGImages', f'{image_id}.jpg')).size
        factor = min(SCALE / max(width, height), SCALE / min(width, height))
        sizes.append((int(height * factor + 0.5), int(width * factor + 0.5)))
    total = 0
    for start in range(0, len(sizes), batch_size):
        batch = sizes[start:start + batch_size]
        height, width = max(h for h, _ in batch), max(w for _, w in batch)
        total += len(batch) * ((height // PATCH) * (width // PATCH) + 1)
    return total


@pytest.fixture(scope='module')
def usage(toy_run, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('expert_usage'))
    summary = load_tool('expert_usage').main(
        [toy_run.config, toy_run.checkpoint, '--out', out, '--cfg-options', *TINY])
    with open(osp.join(out, 'expert_usage.json')) as f:
        saved = json.load(f)
    return out, summary, saved


# ----------------------------------------------------------------------------------------------
# expert_usage.py
def test_figures_exist_and_open_at_their_sizes(usage):
    out, _, saved = usage
    assert sorted(os.listdir(out)) == ['expert_usage.json', 'selection_frequency.png',
                                       'shared_gate_mass.png', 'task_similarity.png']
    # Hand-computed from the documented geometry (pixels):
    expected = {
        # grid of 2 blocks x 1 layer (mlp); panels 280 wide, 100 + 30 per task high; margins
        'selection_frequency': (220 + 280, 80 + 2 * (100 + 30 * 5)),
        # 2 layers -> minimum width 640; one panel (shared mass, no global expert)
        'shared_gate_mass': (640, 200 + 260),
        # 5 x 5 cells of 80 pixels and margins
        'task_similarity': (200 + 80 * 5, 140 + 80 * 5),
    }
    for key, (width, height) in expected.items():
        entry = saved['figures'][key]
        assert (entry['width'], entry['height']) == (width, height), key
        path = osp.join(out, entry['file'])
        with Image.open(path) as image:
            assert image.format == 'PNG' and image.size == (width, height), key
        pixels = mpimg.imread(path)
        assert pixels.shape[:2] == (height, width)
        assert pixels[..., :3].std() > 0.05, f'{key} is blank'


def test_json_selection_frequencies_and_tokens(usage):
    _, summary, saved = usage
    assert saved == json.loads(json.dumps(summary))  # what main() returns is what it wrote
    assert saved['tasks'] == TASKS and saved['num_samples'] == 20
    assert list(saved['layers']) == LAYERS and saved['constant_gate_layers'] == []
    tokens = tokens_of(toy_ids('val'))
    assert tokens == 940  # the 20 toy val images, resized to fit 64 x 64
    for name, layer in saved['layers'].items():
        assert layer['type'] == 'MoELoRAFFN'
        assert (layer['num_experts'], layer['top_k'], layer['num_shared'], layer['rank'],
                layer['shared_gating'], layer['routed_experts']) == (EXPERTS, TOP_K, SHARED,
                                                                      RANK, 'adaptive', SPARSE)
        assert list(layer['tasks']) == TASKS
        for task, entry in layer['tasks'].items():
            where = f'{name}/{task}'
            assert entry['tokens'] == tokens, where  # every token of every image, once
            counts = np.array(entry['counts'])
            freq = np.array(entry['selection_frequency'])
            assert counts.shape == freq.shape == (SPARSE, )
            assert counts.sum() == TOP_K * tokens, where  # k selections per token
            np.testing.assert_allclose(freq, counts / tokens, rtol=1e-12)
            assert freq.sum() == pytest.approx(TOP_K, abs=1e-9), where
            assert ((freq >= 0) & (freq <= 1)).all(), where
            # 'adaptive' (ASE): one softmax over the k sparse and the S shared logits
            assert 0.0 < entry['shared_mass'] < 1.0, where
            assert entry['sparse_mass'] + entry['shared_mass'] == pytest.approx(1.0, abs=1e-6)


def test_json_similarity_matrix(usage):
    _, _, saved = usage
    similarity = saved['similarity']
    assert similarity['tasks'] == TASKS and similarity['layers'] == LAYERS
    matrix = np.array(similarity['matrix'], dtype=np.float64)
    assert matrix.shape == (5, 5)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-9)
    assert ((matrix >= 0) & (matrix <= 1 + 1e-9)).all()
    # semseg vs sal by hand: cosine of (frequency / k) at every layer, mean over the 2 layers
    cosines = []
    for layer in saved['layers'].values():
        a = np.array(layer['tasks']['semseg']['selection_frequency']) / TOP_K
        b = np.array(layer['tasks']['sal']['selection_frequency']) / TOP_K
        cosines.append(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert matrix[0, 2] == pytest.approx(np.mean(cosines), abs=1e-12)
    # the routers are per task and trained apart: no two tasks route identically
    assert (matrix[~np.eye(5, dtype=bool)] < 0.999).all()


def test_max_samples_and_batches(toy_run, tmp_path):
    tool = load_tool('expert_usage')
    ids = toy_ids('val')[:3]
    one = tool.main([toy_run.config, toy_run.checkpoint, '--out', str(tmp_path / 'one'),
                     '--max-samples', '3', '--cfg-options', *TINY])
    assert one['num_samples'] == 3
    assert one['layers'][LAYERS[0]]['tasks']['edge']['tokens'] == tokens_of(ids)
    # batches of 2: the first full, the second cut to 1 image; padding tokens count too
    two = tool.main([toy_run.config, toy_run.checkpoint, '--out', str(tmp_path / 'two'),
                     '--max-samples', '3', '--cfg-options', *TINY,
                     'val_dataloader.batch_size=2'])
    assert two['num_samples'] == 3
    assert two['layers'][LAYERS[-1]]['tasks']['semseg']['tokens'] == tokens_of(ids, 2)
    with pytest.raises(ValueError, match='--max-samples=0 must be a positive int'):
        tool.main([toy_run.config, toy_run.checkpoint, '--out', str(tmp_path / 'zero'),
                   '--max-samples', '0', '--cfg-options', *TINY])


def test_backbones_without_routing_are_refused(toy_run, tmp_path):
    tool = load_tool('expert_usage')

    def usage_of(config, *options):
        return tool.main([config, toy_run.checkpoint, '--out', str(tmp_path / 'out'),
                          '--cfg-options', *TINY, *options])

    # plain LoRA (the single-task baseline config): constant gates, no router
    stl = osp.join(ROOT, 'configs', 'toy', 'stl-sal_vit-tiny_lora-r4_300it_toy-pascal-mt-64x64.py')
    with pytest.raises(ValueError, match=r'model\.backbone\.adapter=None \(no routed experts; '
                       r'model\.backbone\.lora is plain LoRA'):
        usage_of(stl)
    with pytest.raises(ValueError, match=r'model\.backbone\.adapter \(num_experts=1, '
                       r"num_shared=0, shared_gating='none'\) has constant gates"):
        usage_of(toy_run.config, 'model.backbone.adapter.num_experts=1',
                 'model.backbone.adapter.top_k=1', 'model.backbone.adapter.num_shared=0',
                 "model.backbone.adapter.shared_gating='none'",
                 'model.backbone.adapter.mi_loss_weight=0')
    # mmseg's ViT: no routing statistics at all
    plain_vit = tmp_path / 'mmseg_vit.py'
    plain_vit.write_text(
        f'_base_ = [{toy_run.config!r}]\n'
        'model = dict(backbone=dict(_delete_=True, type="VisionTransformer", img_size=(64, 64), '
        'patch_size=8, embed_dims=64, num_layers=2, num_heads=4, out_indices=(0, 1)))\n')
    with pytest.raises(ValueError, match="model.backbone.type='VisionTransformer' records no "
                       'routing statistics'):
        tool.main([str(plain_vit), toy_run.checkpoint, '--out', str(tmp_path / 'out')])
    with pytest.raises(FileNotFoundError, match='nope.pth does not exist'):
        tool.main([toy_run.config, str(tmp_path / 'nope.pth'), '--out', str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()  # nothing written on refusal


def test_mlp_expert_layers(tmp_path):
    """FGMoE / Task-MoE MLP layers (untrained, 2 images): their own expert counts and masses;
    plain-LoRA adapters beside them have constant gates and are listed, not analysed."""
    from mmase.analysis import expert_usage as eu

    config = osp.join(ROOT, 'configs', 'toy', 'ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py')
    arch = {'model.backbone.arch.num_layers': 2, 'model.backbone.out_indices': [0, 1],
            'model.backbone.adapter': dict(placement='linear', targets=['qkv', 'proj'],
                                           mi_loss_weight=0.0),
            'model.backbone.lora': None}
    plain_lora = dict(placement='linear', num_experts=1, top_k=1, num_shared=0,
                      shared_gating='none', targets=['qkv', 'proj'], mi_loss_weight=0.0)
    cases = {
        # 8 slices of the 128 hidden units: 2 shared, top-2 of the 6 routed, a global expert
        'FGMoE': ({'model.backbone.mlp_moe': dict(type='FGMoE', num_experts=8, top_k=2,
                                                  num_shared=2, blocks=[1])}, 6, 2),
        'TaskMoE': ({'model.backbone.mlp_moe': dict(type='TaskMoE', num_experts=4, top_k=1),
                     'model.backbone.adapter': plain_lora}, 4, 1),
    }
    ids = toy_ids('val')[:2]
    for layer_type, (options, routed, top_k) in cases.items():
        torch.manual_seed(0)
        cfg, model, loader = eu.build_model_and_loader(config, {**arch, **options})
        backbone, layers = eu.check_routed_backbone(model, cfg)
        stats, num = eu.collect_routing(model, backbone, loader, max_samples=2)
        summary = eu.summarize_routing(stats, layers, model.tasks, num)
        assert num == 2
        moe = [n for n, layer in summary['layers'].items() if layer['type'] == layer_type]
        for name in moe:
            layer = summary['layers'][name]
            assert (layer['routed_experts'], layer['top_k']) == (routed, top_k)
            for task, entry in layer['tasks'].items():
                assert entry['tokens'] == tokens_of(ids)
                assert sum(entry['selection_frequency']) == pytest.approx(top_k, abs=1e-9)
                if layer_type == 'FGMoE':  # the global expert's sigmoid gate
                    assert 0 < entry['global_mass'] < 1 and 'shared_mass' not in entry
                else:  # 'topk' gates sum to 1
                    assert entry['sparse_mass'] == pytest.approx(1.0, abs=1e-6)
        if layer_type == 'FGMoE':
            assert list(summary['layers']) == ['blocks.0.attn.qkv', 'blocks.0.attn.proj',
                                               'blocks.1.attn.qkv', 'blocks.1.attn.proj',
                                               'blocks.1.mlp']
            assert summary['constant_gate_layers'] == []
            # per-task slices: expert i differs between tasks, so the layer is left out
            assert summary['similarity']['layers'] == list(summary['layers'])[:4]
            sizes = {'selection_frequency': (220 + 3 * 280, 580),  # columns qkv, proj, mlp
                     'shared_gate_mass': (640, 200 + 2 * 260)}  # shared and global panels
        else:
            assert list(summary['layers']) == ['blocks.0.mlp', 'blocks.1.mlp']
            assert summary['constant_gate_layers'] == [
                f'blocks.{b}.attn.{p}' for b in (0, 1) for p in ('proj', 'qkv')]
            assert summary['similarity']['layers'] == ['blocks.0.mlp', 'blocks.1.mlp']
            sizes = {'selection_frequency': (220 + 280, 580),  # one column: mlp
                     'shared_gate_mass': (640, 200 + 260)}  # one panel saying there is none
        for key, size in sizes.items():
            path = str(tmp_path / f'{layer_type}_{key}.png')
            assert getattr(eu, f'plot_{key}')(summary, path) == size
            assert Image.open(path).size == size


# ----------------------------------------------------------------------------------------------
# delta_m.py and count_params.py on the same run
def test_delta_m_tool_agrees_with_the_evaluator(toy_run, capsys):
    """The table tool, given the toy Δm reference, recomputes the Δm the evaluator logged."""
    metrics = json.load(open(osp.join(toy_run.work_dir, 'metrics_val_iter_4.json')))
    reference = Config.fromfile(
        osp.join(ROOT, 'configs', '_base_', 'stl_reference', 'toy_pascal_mt.py')).stl_reference
    load_tool('delta_m').main([toy_run.work_dir, '--stl'] +
                              [f'{task}={value}' for task, value in reference.items()]
                              + ['--order'] + list(reference))  # the columns zipped below
    out = capsys.readouterr().out
    (row, ) = [line for line in out.splitlines() if line.startswith(f'| {toy_run.work_dir} ')]
    cells = [cell.strip() for cell in row.strip('|').split('|')][1:]
    assert len(cells) == len(reference) + 1
    for task, cell in zip(reference, cells):  # 'value (delta)' per task, then Δm
        value, delta = cell.split(' (')
        assert float(value) == pytest.approx(metrics[
            {'semseg': 'semseg/mIoU', 'human_parts': 'human_parts/mIoU', 'sal': 'sal/maxF',
             'normals': 'normals/mErr', 'edge': 'edge/odsF'}[task]], abs=0.006)
        assert float(delta.rstrip(')')) == pytest.approx(metrics[f'multitask/delta_{task}'],
                                                         abs=0.006)
    assert float(cells[-1]) == pytest.approx(metrics['multitask/delta_m'], abs=0.006)


def test_count_params_agrees_with_the_checkpoint(toy_run):
    rows = load_tool('count_params').main([toy_run.config, '--json', '--cfg-options', *TINY])
    (row, ) = rows
    # Experts beside each FFN: N r (d + d), dims 64, two blocks; plain LoRA r=4 on qkv
    # (64 -> 192) and proj (64 -> 64).
    lora = 2 * RANK * ((64 + 192) + (64 + 64))
    adapters = 2 * EXPERTS * RANK * (64 + 64) + lora
    # Routers: T N d per block; task embeddings T d.
    routers = 2 * 5 * EXPERTS * 64 + 5 * 64
    assert (row['adapters'], row['lora'], row['routers']) == (adapters, lora, routers) == (
        19456, 3072, 10560)
    assert row['experts'] == '16/3/1/4'
    state = torch.load(toy_run.checkpoint, map_location='cpu', weights_only=True)['state_dict']
    buffers = ('running_mean', 'running_var', 'num_batches_tracked')
    params = {k: v.numel() for k, v in state.items() if not k.endswith(buffers)}
    assert row['total'] == sum(params.values())
    assert row['adapters'] == sum(n for k, n in params.items() if 'lora_' in k)
    assert row['routers'] == sum(n for k, n in params.items()
                                 if 'router' in k or k.endswith('task_embed'))
    heads = sum(n for k, n in params.items() if k.startswith('decode_heads.'))
    assert row['trainable'] == adapters + routers + heads  # the ViT itself stays frozen


# ----------------------------------------------------------------------------------------------
# tools/test.py --show-dir
def test_show_dir_writes_one_png_per_val_image(toy_run, tmp_path):
    show_dir = tmp_path / 'show'
    run(['tools/test.py', toy_run.config, toy_run.checkpoint, '--work-dir', str(tmp_path / 'w'),
         '--show-dir', str(show_dir), '--cfg-options', *TINY])
    image_dir = show_dir / 'vis_data' / 'vis_image'  # LocalVisBackend under the save_dir
    ids = toy_ids('val')
    assert sorted(os.listdir(image_dir)) == sorted(f'test_{i}.jpg_0.png' for i in ids)
    for image_id in ids:
        width, height = Image.open(osp.join(TOY_DATA, 'JPEGImages', f'{image_id}.jpg')).size
        with Image.open(image_dir / f'test_{image_id}.jpg_0.png') as canvas:
            # columns: input + one per task, 2 in at 100 dpi; rows: prediction, ground truth
            assert canvas.format == 'PNG' and canvas.mode == 'RGB'
            assert canvas.size[0] == 200 * (1 + len(TASKS)), image_id
            assert canvas.size[1] > 2 * 200 * height / width, image_id
    assert osp.isfile(tmp_path / 'w' / 'metrics_test.json')
