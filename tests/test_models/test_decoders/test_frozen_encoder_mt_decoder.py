"""FrozenEncoderMTDecoder in the multi-task segmentor: the encoder gets no gradient, stays in
eval mode and runs once per batch; the decoder runs all tasks in one pass; router losses reach
the total loss; any mmseg backbone as the encoder; errors at build naming the field."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmase  # noqa: F401  (registers the modules)

TASKS = ('semseg', 'sal', 'normals')
DEC = 16  # decoder width
MOE = dict(num_experts=4, top_k=2, num_shared=1, load_balance_weight=0.01)


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('mmseg')


def vit_encoder(**kwargs):
    cfg = dict(type='ASEViT', arch=dict(embed_dims=32, num_layers=2, num_heads=2),
               img_size=32, patch_size=8, out_indices=(0, 1), adapter=None, lora=None,
               task_embedding=False, drop_path_rate=0.1)
    cfg.update(kwargs)
    return cfg


def backbone_cfg(encoder=None, in_channels=(32, 32), **decoder):
    dec = dict(type='FGMoEDecoder', in_channels=list(in_channels), embed_dims=DEC,
               num_heads=2, mlp_ratio=2.0, mlp_moe=dict(MOE))
    dec.update(decoder)
    return dict(type='FrozenEncoderMTDecoder', tasks=TASKS,
                encoder=vit_encoder() if encoder is None else encoder, decoder=dec)


def head(type_, **kwargs):
    return dict(type=type_, in_channels=[DEC, DEC], in_index=[0, 1], channels=8,
                input_transform='resize_concat', num_convs=1, concat_input=False,
                norm_cfg=dict(type='BN'), dropout_ratio=0.0, **kwargs)


def model_cfg(backbone=None, heads=None):
    return dict(
        type='MultiTaskEncoderDecoder', tasks=TASKS,
        data_preprocessor=dict(type='MultiTaskDataPreProcessor', size=(32, 32)),
        backbone=backbone_cfg() if backbone is None else backbone,
        decode_heads=dict(semseg=head('FCNHead', num_classes=5), sal=head('BinaryHead'),
                          normals=head('DenseRegressionHead', out_channels=3))
        if heads is None else heads,
        test_cfg=dict(mode='whole'))


def batch(n=2, size=32):
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(n):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8))
        s = SegDataSample(metainfo=dict(ori_shape=(size, size), img_shape=(size, size)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, size, size), generator=g))
        s.set_field(PixelData(data=torch.randint(0, 2, (1, size, size), generator=g)), 'gt_sal')
        normals = torch.nn.functional.normalize(torch.randn(3, size, size, generator=g), dim=0)
        s.set_field(PixelData(data=normals), 'gt_normals')
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def build(cfg=None):
    torch.manual_seed(0)
    model = MODELS.build(model_cfg() if cfg is None else cfg)
    model.train()
    return model


def count_calls(module):
    calls = []
    module.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[0]))
    return calls


# ----------------------------------------------------------------------------------------------
def test_encoder_gets_no_gradient_and_exactly_decoder_and_heads_train():
    model = build()
    backbone = model.backbone
    encoder_names = {f'backbone.encoder.{n}' for n, _ in backbone.encoder.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not trainable & encoder_names
    assert trainable == {n for n, _ in model.named_parameters()} - encoder_names
    data = model.data_preprocessor(batch(), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for name, param in model.named_parameters():
        if name in encoder_names:
            assert param.grad is None, name
        elif '.expert_' not in name and 'router' not in name:
            assert param.grad is not None and torch.count_nonzero(param.grad) > 0, name
    # every task's slices and router were trained (each task ran)
    for block in backbone.decoder.blocks:
        for t in range(len(TASKS)):
            assert torch.count_nonzero(block.mlp.expert_fc1_weight.grad[t]) > 0
            assert torch.count_nonzero(block.mlp.router.weight.grad[t]) > 0


def test_encoder_runs_once_per_batch_and_the_decoder_once_for_all_tasks():
    model = build()
    encoder_calls = count_calls(model.backbone.encoder)
    block_calls = count_calls(model.backbone.decoder.blocks[0])
    data = model.data_preprocessor(batch(n=2), training=True)
    model.loss(data['inputs'], data['data_samples'])
    assert encoder_calls == [2]  # one pass of the 2 images
    assert block_calls == [2 * len(TASKS)]  # one pass of the 2 images x 3 tasks
    model.eval()
    with torch.no_grad():
        model.predict(data['inputs'], data['data_samples'])
    assert encoder_calls == [2, 2] and block_calls == [6, 6]


def test_encoder_stays_in_eval_mode_and_frozen_under_train():
    model = build()
    assert model.training and model.backbone.decoder.training
    assert not any(m.training for m in model.backbone.encoder.modules())
    # drop_path is active in training mode only: eval-mode features are deterministic
    feats = [model.backbone.encode(torch.randn(1, 3, 32, 32, generator=torch.Generator()
                                               .manual_seed(3))) for _ in range(2)]
    torch.testing.assert_close(feats[0], feats[1], rtol=0, atol=0)
    assert not feats[0][0].requires_grad


def test_batched_pass_equals_one_task_at_a_time():
    model = build()
    model.eval()
    inputs = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        batched = model.backbone.forward_tasks(inputs)
        for task in TASKS:
            alone = model.backbone(inputs, task)
            for out, ref in zip(batched[task], alone):
                torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert set(batched) == set(TASKS)
    assert not torch.allclose(batched['semseg'][1], batched['sal'][1])


def test_router_losses_reach_the_total_loss():
    model = build()
    data = model.data_preprocessor(batch(), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    for task in TASKS:
        lb = losses[f'loss_lb_decoder_{task}']
        # 0.01 x Switch loss, which is >= 1 (1 when uniform)
        assert lb.item() >= 0.01 - 1e-6 and lb.requires_grad
    no_lb = build(model_cfg(backbone_cfg(mlp_moe=dict(MOE, load_balance_weight=0.0))))
    losses = no_lb.loss(data['inputs'], data['data_samples'])
    assert not any(k.startswith('loss_lb') for k in losses)


def test_routing_statistics_of_the_decoder_layers():
    model = build()
    model.backbone.record_routing = True
    model.backbone.forward_tasks(torch.randn(2, 3, 32, 32))
    stats = model.backbone.routing_stats()
    assert set(stats) == set(TASKS)
    assert set(stats['sal']) == {'decoder.blocks.0.mlp', 'decoder.blocks.1.mlp'}
    entry = stats['sal']['decoder.blocks.0.mlp']
    assert entry['tokens'] == 2 * 16 and float(entry['selection_rate'].sum()) == pytest.approx(2)
    assert 0 < entry['global_mass'] < 1


@pytest.mark.parametrize('encoder,in_channels,fuse_index,grid', [
    (dict(type='VisionTransformer', img_size=32, patch_size=8, embed_dims=32, num_layers=2,
          num_heads=2, out_indices=(0, 1)), (32, 32), -1, (4, 4)),
    (dict(type='MixVisionTransformer', embed_dims=8, num_layers=[1, 1, 1, 1],
          num_heads=[1, 1, 2, 2], sr_ratios=[8, 4, 2, 1]), (8, 8, 16, 16), 2, (2, 2)),
    (dict(type='SwinTransformer', pretrain_img_size=32, embed_dims=8, depths=(1, 1, 1, 1),
          num_heads=(1, 1, 2, 2), window_size=2), (8, 16, 32, 64), 2, (2, 2)),
])
def test_any_mmseg_backbone_as_the_frozen_encoder(encoder, in_channels, fuse_index, grid):
    model = build(model_cfg(backbone_cfg(encoder, in_channels, fuse_index=fuse_index)))
    assert not any(p.requires_grad for p in model.backbone.encoder.parameters())
    assert not model.backbone.encoder.training
    data = model.data_preprocessor(batch(), training=True)
    feats = model.backbone.forward_tasks(data['inputs'])
    assert all(f.shape == (2, DEC, *grid) for maps in feats.values() for f in maps)
    losses = model.loss(data['inputs'], data['data_samples'])
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert all(p.grad is None for p in model.backbone.encoder.parameters())


def test_pretrained_encoder_weights_load_from_a_local_file(tmp_path):
    plain = MODELS.build(vit_encoder())
    with torch.no_grad():
        for param in plain.parameters():
            param.normal_()
    path = tmp_path / 'vit.pth'
    torch.save(plain.state_dict(), path)
    model = build(model_cfg(backbone_cfg(vit_encoder(pretrained=str(path)))))
    model.init_weights()  # weights load here (OpenMMLab's convention), not at build
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(model.backbone.encoder.state_dict()[name], value)
    unloaded = build(model_cfg(backbone_cfg(vit_encoder(pretrained=str(tmp_path / 'missing.pth')))))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        unloaded.init_weights()


# ----------------------------------------------------------------------------------------------
# bad input, at build
def test_encoder_widths_not_matching_in_channels():
    with pytest.raises(ValueError, match=r'decoder.in_channels=\[64, 64\] does not match the '
                       r'encoder: ASEViT gives 2 feature maps of widths \[32, 32\]'):
        build(model_cfg(backbone_cfg(in_channels=(64, 64))))
    with pytest.raises(ValueError, match=r'decoder.in_channels=\[32, 32, 32\] does not match '
                       r'the encoder: ASEViT gives 2 feature maps'):
        build(model_cfg(backbone_cfg(in_channels=(32, 32, 32))))


def test_slices_not_dividing_the_hidden_width():
    with pytest.raises(ValueError, match='mlp_moe.num_experts=6 does not divide the MLP hidden '
                       'size 32'):
        build(model_cfg(backbone_cfg(mlp_moe=dict(MOE, num_experts=6))))


def test_a_task_without_a_head():
    heads = dict(semseg=head('FCNHead', num_classes=5), sal=head('BinaryHead'))
    with pytest.raises(ValueError, match=r"model.decode_heads has no entry for tasks "
                       r"\['normals'\]"):
        build(model_cfg(heads=heads))


def test_task_conditioned_encoder_is_refused():
    with pytest.raises(ValueError, match='encoder \\(ASEViT\\) is task-conditioned'):
        build(model_cfg(backbone_cfg(vit_encoder(task_embedding=True, tasks=TASKS))))


def test_decoder_fields_set_by_the_wrapper_are_refused():
    with pytest.raises(ValueError, match=r"decoder: \['num_tasks'\] are set by "
                       'FrozenEncoderMTDecoder'):
        build(model_cfg(backbone_cfg(num_tasks=3)))


def test_mmseg_encoder_init_cfg_pretrained_loads_at_init_weights_and_stays_frozen(tmp_path):
    encoder = dict(type='VisionTransformer', img_size=32, patch_size=8, embed_dims=32,
                   num_layers=2, num_heads=2, out_indices=(0, 1))
    source = MODELS.build(encoder)
    with torch.no_grad():
        for param in source.parameters():
            param.normal_()
    path = tmp_path / 'mmseg_vit.pth'
    torch.save(dict(state_dict=source.state_dict()), path)
    model = build(model_cfg(backbone_cfg(
        dict(encoder, init_cfg=dict(type='Pretrained', checkpoint=str(path))))))
    model.init_weights()  # the runner's call: reaches the encoder's init_cfg
    for name, value in source.state_dict().items():
        torch.testing.assert_close(model.backbone.encoder.state_dict()[name], value)
    assert not any(p.requires_grad for p in model.backbone.encoder.parameters())
