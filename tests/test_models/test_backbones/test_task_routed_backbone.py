"""TaskRoutedBackbone around mmseg's Swin, MiT and ViT at tiny sizes: exactness with fresh
experts, where the experts' sum lands, gradients, pretrained loading, bad input."""
import copy

import pytest
import torch
from mmseg.registry import MODELS

import mmase  # noqa: F401
from mmase.models.adapters import LoRAExperts, MoELoRAFFN
from mmase.models.backbones import TaskRoutedBackbone

TASKS = ('semseg', 'sal', 'normals')

INNER = dict(
    swin=dict(type='SwinTransformer', embed_dims=16, depths=(2, 2), num_heads=(2, 2),
              window_size=4, strides=(4, 2), out_indices=(0, 1), drop_path_rate=0.0),
    mit=dict(type='MixVisionTransformer', embed_dims=8, num_stages=2, num_layers=[1, 1],
             num_heads=[1, 2], patch_sizes=[7, 3], strides=[4, 2], sr_ratios=[2, 1],
             out_indices=(0, 1)),
    vit=dict(type='VisionTransformer', img_size=32, patch_size=8, embed_dims=16, num_layers=2,
             num_heads=2, out_indices=(0, 1)),
)

#: What gets wrapped in each tiny backbone (experts beside FFNs, plain LoRA on attention).
WRAPPED = dict(
    swin=(['stages.0.blocks.0.ffn.layers', 'stages.0.blocks.1.ffn.layers',
           'stages.1.blocks.0.ffn.layers', 'stages.1.blocks.1.ffn.layers'],
          [f'stages.{s}.blocks.{b}.attn.w_msa.{t}' for s in (0, 1) for b in (0, 1)
           for t in ('qkv', 'proj')]),
    mit=(['layers.0.1.0.ffn.layers', 'layers.1.1.0.ffn.layers'],
         ['layers.0.1.0.attn.attn', 'layers.1.1.0.attn.attn']),
    vit=(['layers.0.ffn.layers', 'layers.1.ffn.layers'],
         ['layers.0.attn.attn', 'layers.1.attn.attn']),
)

FAMILIES = sorted(INNER)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def plain_and_file(family, tmp_path):
    """The plain mmseg backbone (random init) and its state dict saved in mmseg's format."""
    torch.manual_seed(0)
    plain = MODELS.build(copy.deepcopy(INNER[family]))
    plain.init_weights()
    path = tmp_path / f'{family}.pth'
    torch.save(plain.state_dict(), path)
    plain.eval()  # (Swin's train() returns None)
    return plain, str(path)


def wrapped(family, path=None, **kwargs):
    """The wrapped backbone (plain LoRA and task embeddings on unless stated), its checkpoint
    loaded (``init_weights``) when ``path`` is given."""
    kwargs = dict(dict(lora=dict(), task_embedding=True), **kwargs)
    inner = copy.deepcopy(INNER[family])
    if path is not None:
        inner['init_cfg'] = dict(type='Pretrained', checkpoint=path)
    torch.manual_seed(1)
    model = TaskRoutedBackbone(backbone=inner, tasks=TASKS, **kwargs)
    if path is not None:
        model.init_weights()
    return model


def randomise_experts(model, scale=0.05):
    """Non-zero B (and task embeddings) so that experts, LoRA and embeddings act."""
    torch.manual_seed(2)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith('lora_B') or name == 'task_embed':
                param.normal_(std=scale)


@pytest.mark.parametrize('family', FAMILIES)
def test_wrapped_names(family):
    model = wrapped(family)
    experts, lora = WRAPPED[family]
    assert model.adapter_names == experts
    assert model.lora_names == lora
    assert model.wrapped_names == experts + lora
    for name in experts:
        assert isinstance(model.backbone.get_submodule(name), MoELoRAFFN)
    layers = [n for n, _ in model.routed_layers()]
    assert layers == [f'backbone.{n}' for n in experts]


@pytest.mark.parametrize('family', FAMILIES)
def test_fresh_experts_are_exact(family, tmp_path):
    plain, path = plain_and_file(family, tmp_path)
    model = wrapped(family, path).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        reference = tuple(plain(x))
        batched = model.forward_tasks(x)
        single = model(x, 'sal')
    assert len(reference) == 2
    for task in TASKS:
        for out, ref in zip(batched[task], reference):
            assert out.shape == ref.shape
            torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    for out, ref in zip(single, reference):
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize('family', FAMILIES)
def test_batched_pass_equals_one_pass_per_task(family):
    model = wrapped(family).eval()
    randomise_experts(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        batched = model.forward_tasks(x)
        single = {t: model(x, t) for t in TASKS}
    for task in TASKS:
        for a, b in zip(batched[task], single[task]):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # the tasks differ once their routers, experts and embeddings act
    assert (batched['semseg'][-1] - batched['sal'][-1]).abs().max() > 1e-4


@pytest.mark.parametrize('family', FAMILIES)
def test_expert_sum_lands_once_inside_the_residual(family):
    """A wrapped FFN returns ``identity + FFN branch(x') + sum g B A x'``: the FFN adds the
    identity once and the experts' sum once (drop path off)."""
    model = wrapped(family).eval()
    randomise_experts(model)
    name = model.adapter_names[0]
    ffn = model.backbone.get_submodule(name.rpartition('.')[0])
    layer = ffn.layers
    width = layer.experts.in_features
    torch.manual_seed(3)
    side = 4
    x = torch.randn(2, side * side, width)
    identity = torch.randn(2, side * side, width)
    task = torch.tensor([0, 2])
    with torch.no_grad(), model.task_context.use(task):
        if family == 'mit':
            out = ffn(x, (side, side), identity=identity)
            maps = x.transpose(1, 2).reshape(2, width, side, side)
            branch = layer.ffn(maps).flatten(2).transpose(1, 2)
        else:
            out = ffn(x, identity=identity)
            branch = layer.ffn(x)
        delta = layer.experts(x, task)
    assert delta.abs().max() > 1e-4
    torch.testing.assert_close(out, identity + branch + delta, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize('family', FAMILIES)
def test_gradients_reach_exactly_the_adapters(family):
    model = wrapped(family, adapter=dict(mi_loss_weight=0.01)).train()
    randomise_experts(model)
    feats = model.forward_tasks(torch.randn(2, 3, 32, 32))
    loss = sum(f.square().mean() for outs in feats.values() for f in outs)
    losses = model.pop_aux_losses()
    assert set(losses) == {'loss_mi'}
    (loss + losses['loss_mi']).backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    with_grad = {n for n, p in model.named_parameters()
                 if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_grad == trainable
    expected = {'task_embed'}
    for prefix, module in model.named_modules():
        if isinstance(module, LoRAExperts):
            expected.update(f'{prefix}.{p}' for p in ('lora_A', 'lora_B'))
            if module.router is not None:
                expected.add(f'{prefix}.router.weight')
    assert trainable == expected
    experts, lora = WRAPPED[family]
    assert sum(f'{n}.experts.router.weight' in expected
               for n in ('backbone.' + e for e in experts)) == len(experts)
    assert len([n for n in expected if 'router' in n]) == len(experts)
    # the inner backbone's own weights stay frozen, also after train()
    model.train()
    assert all(not p.requires_grad for n, p in model.named_parameters() if n not in expected)


def test_shared_baseline_is_task_agnostic_and_exact(tmp_path):
    plain, path = plain_and_file('swin', tmp_path)
    model = wrapped('swin', path, adapter=None, task_embedding=False).eval()
    assert model.task_agnostic and model.adapter_names == []
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_tasks(x)
        reference = plain(x)
    assert feats['semseg'] is feats['normals']
    for out, ref in zip(feats['semseg'], reference):
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_routing_statistics_and_stages():
    model = wrapped('swin', adapter=dict(stages=[1]), lora=dict(stages=(0, )),
                    record_routing=True).eval()
    assert model.adapter_names == ['stages.1.blocks.0.ffn.layers', 'stages.1.blocks.1.ffn.layers']
    assert all(n.startswith('stages.0.') for n in model.lora_names)
    with torch.no_grad():
        model.forward_tasks(torch.randn(2, 3, 32, 32))
    stats = model.routing_stats()
    assert sorted(stats) == sorted(TASKS)
    entry = stats['sal']['backbone.stages.1.blocks.0.ffn.layers']
    # 2 images of 4x4 tokens at stage 1 (32 px / 4 / 2); 15 sparse experts, top-3
    assert entry['tokens'] == 2 * 16 and entry['counts'].shape == (15, )
    assert float(entry['selection_rate'].sum()) == pytest.approx(3.0)


def test_weights_load_at_init_weights_not_at_build(tmp_path):
    """Building never reads the file (so a config builds without it); init_weights loads it
    into the wrapped backbone, once (a second call keeps what training changed)."""
    plain, path = plain_and_file('mit', tmp_path)
    inner = dict(INNER['mit'], init_cfg=dict(type='Pretrained', checkpoint=path))
    torch.manual_seed(1)
    model = TaskRoutedBackbone(backbone=inner, tasks=TASKS, lora=dict())
    key = 'layers.0.1.0.attn.attn.in_proj_weight'
    assert not torch.equal(model.backbone.state_dict()[key], plain.state_dict()[key])
    model.init_weights()
    assert torch.equal(model.backbone.state_dict()[key], plain.state_dict()[key])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.init_weights()
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    missing = dict(INNER['mit'], init_cfg=dict(type='Pretrained', checkpoint='nowhere.pth'))
    unloaded = TaskRoutedBackbone(backbone=missing, tasks=TASKS)  # builds without the file
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        unloaded.init_weights()


# ------------------------------------------------------------------------------------------------
# pretrained files
def test_segmentor_checkpoint_prefix_and_pretrained_field(tmp_path):
    plain, _ = plain_and_file('vit', tmp_path)
    path = tmp_path / 'segmentor.pth'
    state = {f'backbone.{k}': v for k, v in plain.state_dict().items()}
    state['decode_head.conv_seg.weight'] = torch.zeros(2, 2)
    torch.save(dict(state_dict=state, meta=dict()), path)
    inner = dict(INNER['vit'], pretrained=str(path))
    model = TaskRoutedBackbone(backbone=inner, tasks=TASKS, lora=dict(), task_embedding=True)
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        for out, ref in zip(model(x, 'semseg'), plain(x)):
            torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_swin_checkpoint_without_output_norms_loads(tmp_path):
    """ImageNet Swin checkpoints lack mmseg's output norms norm{i} and carry the classifier's
    head and final norm: those are the only keys let through (reported)."""
    plain, _ = plain_and_file('swin', tmp_path)
    state = {k: v for k, v in plain.state_dict().items() if not k.startswith('norm')}
    state.update({'norm.weight': torch.ones(32), 'head.weight': torch.zeros(10, 32)})
    path = tmp_path / 'imagenet.pth'
    torch.save(state, path)
    model = wrapped('swin', str(path))
    loaded = model.backbone.state_dict()
    key = 'stages.1.blocks.0.ffn.layers.0.0.weight'
    assert torch.equal(loaded[key], state[key])


def test_checkpoint_of_another_architecture_names_the_file(tmp_path):
    _, mit_path = plain_and_file('mit', tmp_path)
    with pytest.raises(ValueError, match=r'backbone.init_cfg.checkpoint=.*mit\.pth does not '
                       r'match this SwinTransformer: missing keys'):
        wrapped('swin', mit_path)


def test_checkpoint_of_another_width_names_the_file(tmp_path):
    _, path = plain_and_file('vit', tmp_path)
    inner = dict(INNER['vit'], embed_dims=32, init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(ValueError, match=r'vit\.pth does not match this VisionTransformer: shape '
                       r'mismatch in cls_token'):
        TaskRoutedBackbone(backbone=inner, tasks=TASKS).init_weights()


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        wrapped('mit', str(tmp_path / 'nowhere.pth'))


# ------------------------------------------------------------------------------------------------
# bad input
def test_backbone_without_a_layout_is_refused():
    with pytest.raises(ValueError, match=r"backbone.type='ResNetV1c' has no layout \(its blocks, "
                       r'FFNs'):
        TaskRoutedBackbone(backbone=dict(type='ResNetV1c', depth=18), tasks=TASKS)


@pytest.mark.parametrize('field,cfg', [('adapter', dict(adapter=dict(stages=[2]))),
                                       ('lora', dict(lora=dict(stages=(0, 4))))])
def test_stages_that_do_not_exist_are_refused(field, cfg):
    with pytest.raises(ValueError, match=rf'{field}.stages: \d is not a stage of this '
                       r'SwinTransformer \(2 stage\(s\): 0..1\)'):
        wrapped('swin', **cfg)


def test_bad_expert_fields_are_named():
    with pytest.raises(ValueError, match='adapter.top_k=16 exceeds the sparse pool'):
        wrapped('vit', adapter=dict(top_k=16))
    with pytest.raises(ValueError, match=r"adapter: unknown keys \['expert'\]"):
        wrapped('vit', adapter=dict(expert=[0]))
    with pytest.raises(ValueError, match="lora.targets: unknown layer 'fc3'"):
        wrapped('vit', lora=dict(targets=('fc3', )))
    with pytest.raises(ValueError, match=r"adapter.blocks: 5 is not a block index of this "
                       r'2-block VisionTransformer'):
        wrapped('vit', adapter=dict(blocks=[5]))
    with pytest.raises(TypeError, match="'experts' is now spelled 'adapter'"):
        TaskRoutedBackbone(backbone=dict(INNER['vit']), tasks=TASKS, experts=dict())
    with pytest.raises(ValueError, match='backbone.pretrained and backbone.init_cfg'):
        TaskRoutedBackbone(backbone=dict(INNER['vit'], pretrained='a.pth',
                                         init_cfg=dict(type='Pretrained', checkpoint='a.pth')),
                           tasks=TASKS)


def test_wrapped_layer_outside_the_backbone_forward_is_refused():
    model = wrapped('vit')
    with pytest.raises(RuntimeError, match='outside its backbone'):
        model.backbone(torch.randn(1, 3, 32, 32))


# ------------------------------------------------------------------------------------------------
# original releases, converted as mmseg's swin2mmseg / mit2mmseg do
def _swin_release(state):
    """mmseg-format Swin keys -> the Swin release's (the inverse of mmseg's converter)."""
    release = {'norm.weight': torch.ones(32), 'norm.bias': torch.zeros(32),
               'head.weight': torch.zeros(10, 32), 'head.bias': torch.zeros(10)}
    for key, value in state.items():
        if key.startswith('norm'):
            continue  # mmseg's output norms are not in the release
        if key.endswith('downsample.reduction.weight'):
            out, inp = value.shape
            value = value.reshape(out, inp // 4, 4).transpose(1, 2)[:, [0, 2, 1, 3], :]
            value = value.reshape(out, inp)
        elif '.downsample.norm.' in key:
            value = value.reshape(-1, 4).t()[[0, 2, 1, 3]].reshape(-1)
        key = (key.replace('stages.', 'layers.', 1).replace('.attn.w_msa.', '.attn.')
               .replace('.ffn.layers.0.0.', '.mlp.fc1.').replace('.ffn.layers.1.', '.mlp.fc2.')
               .replace('patch_embed.projection.', 'patch_embed.proj.'))
        release[key] = value
    return release


def _mit_release(state):
    """mmseg-format MiT keys -> the SegFormer release's (the inverse of mmseg's converter)."""
    import re
    release = {'head.weight': torch.zeros(10, 16), 'head.bias': torch.zeros(10)}
    for key, value in state.items():
        stage, part, rest = re.match(r'^layers\.(\d+)\.(\d)\.(.*)$', key).groups()
        stage = int(stage) + 1
        if part == '0':
            release[f'patch_embed{stage}.' + rest.replace('projection.', 'proj.')] = value
        elif part == '2':
            release[f'norm{stage}.{rest}'] = value
        elif '.attn.attn.in_proj_' in '.' + rest:
            kind = rest.rsplit('in_proj_', 1)[1]
            block = rest.split('.')[0]
            width = value.shape[0] // 3
            release[f'block{stage}.{block}.attn.q.{kind}'] = value[:width]
            release[f'block{stage}.{block}.attn.kv.{kind}'] = value[width:]
        else:
            rest = rest.replace('attn.attn.out_proj.', 'attn.proj.')
            if '.ffn.layers.' in '.' + rest:
                if rest.endswith(('layers.0.weight', 'layers.4.weight')):
                    value = value.reshape(value.shape[:2])
                rest = (rest.replace('ffn.layers.0.', 'mlp.fc1.')
                        .replace('ffn.layers.1.', 'mlp.dwconv.dwconv.')
                        .replace('ffn.layers.4.', 'mlp.fc2.'))
            release[f'block{stage}.{rest}'] = value
    return release


@pytest.mark.parametrize('family,to_release,marker', [
    ('swin', _swin_release, 'layers.1.blocks.0.mlp.fc1.weight'),
    ('mit', _mit_release, 'block2.0.attn.kv.weight')])
def test_original_release_is_converted(family, to_release, marker, tmp_path):
    plain, _ = plain_and_file(family, tmp_path)
    release = to_release(plain.state_dict())
    assert marker in release and marker not in plain.state_dict()
    path = tmp_path / 'release.pth'
    torch.save(dict(model=release), path)
    model = wrapped(family, str(path)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for out, ref in zip(model(x, 'normals'), plain(x)):
            torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_weights_load_into_a_moved_model(tmp_path):
    """Moving a model (``.cuda()``, ``.to(dtype)``) replaces its buffers: init_weights writes
    into the model's tensors as they are when it runs, not as they were at build."""
    plain, path = plain_and_file('swin', tmp_path)
    inner = dict(INNER['swin'], init_cfg=dict(type='Pretrained', checkpoint=path))
    model = TaskRoutedBackbone(backbone=inner, tasks=TASKS).to(torch.float64)
    model._apply(lambda t: t.clone())  # as a move to another device: every buffer is new
    key = 'stages.0.blocks.0.attn.w_msa.relative_position_index'
    model.backbone.get_submodule(key.rpartition('.')[0]).relative_position_index.zero_()
    model.init_weights()
    state = model.backbone.state_dict()
    assert torch.equal(state[key], plain.state_dict()[key])
    weight = 'stages.1.blocks.0.ffn.layers.0.0.weight'
    assert state[weight].dtype == torch.float64
    torch.testing.assert_close(state[weight], plain.state_dict()[weight].double())
