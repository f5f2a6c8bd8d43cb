"""MultiTaskEncoderDecoder with mmseg's own VisionTransformer, FCNHead and UPerHead."""
import copy

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmase  # noqa: F401

TASKS = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
C = 32


def head(type_, **kwargs):
    cfg = dict(type=type_, in_channels=[C, C], in_index=[0, 1], channels=16,
               input_transform='resize_concat', norm_cfg=None, dropout_ratio=0.0)
    if type_ == 'UPerHead':
        del cfg['input_transform']
        cfg.update(pool_scales=(1, 2))
    cfg.update(kwargs)
    return cfg


def model_cfg(**overrides):
    cfg = dict(
        type='MultiTaskEncoderDecoder',
        tasks=TASKS,
        data_preprocessor=dict(type='MultiTaskDataPreProcessor', size=(32, 32)),
        backbone=dict(type='VisionTransformer', img_size=(32, 32), patch_size=8, in_channels=3,
                      embed_dims=C, num_layers=2, num_heads=2, mlp_ratio=2, out_indices=(0, 1),
                      final_norm=True),
        decode_heads=dict(
            semseg=head('FCNHead', num_classes=21, num_convs=1, concat_input=False),
            human_parts=head('UPerHead', num_classes=7),
            sal=head('BinaryHead', num_convs=1, concat_input=False),
            normals=head('DenseRegressionHead', num_convs=1, concat_input=False),
            edge=head('BinaryHead', num_convs=1, concat_input=False,
                      loss_decode=dict(type='BalancedBinaryCrossEntropyLoss', pos_weight=0.95)),
        ),
        loss_weights=dict(semseg=1.0, human_parts=2.0, sal=5.0, normals=10.0, edge=50.0),
        test_cfg=dict(mode='whole'))
    cfg.update(overrides)
    return cfg


def make_batch(n=2, size=(28, 30), flip=False):
    """Raw dataloader output: uint8 images and samples with every task's map."""
    g = torch.Generator().manual_seed(0)
    h, w = size
    inputs, samples = [], []
    for _ in range(n):
        inputs.append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        s = SegDataSample(metainfo=dict(ori_shape=(h, w), img_shape=(h, w), flip=flip,
                                        flip_direction='horizontal'))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 21, (1, h, w), generator=g))
        s.set_field(PixelData(data=torch.randint(0, 7, (1, h, w), generator=g)), 'gt_human_parts')
        s.set_field(PixelData(data=torch.randint(0, 2, (1, h, w), generator=g)), 'gt_sal')
        s.set_field(PixelData(data=torch.randint(0, 2, (1, h, w), generator=g)), 'gt_edge')
        normals = torch.nn.functional.normalize(torch.randn(3, h, w, generator=g), dim=0)
        s.set_field(PixelData(data=normals), 'gt_normals')
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def test_loss_has_every_task_weighted_and_backprops():
    model = MODELS.build(model_cfg())
    data = model.data_preprocessor(make_batch(), training=True)
    assert data['inputs'].shape == (2, 3, 32, 32)
    # every task map padded with its ignore value
    assert (data['data_samples'][0].gt_sem_seg.data[:, 28:, :] == 255).all()
    assert (data['data_samples'][0].gt_normals.data[:, :, 30:] == 0).all()
    losses = model(**data, mode='loss')
    for key in ('semseg.loss_ce', 'human_parts.loss_ce', 'sal.loss_bce', 'normals.loss_normals',
                'edge.loss_bce'):
        assert key in losses and torch.isfinite(losses[key])
    # the weight multiplies the head's own loss
    model.loss_weights['edge'] = 1.0
    unweighted = model(**data, mode='loss')['edge.loss_bce']
    torch.testing.assert_close(losses['edge.loss_bce'], 50.0 * unweighted)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert model.backbone.patch_embed.projection.weight.grad is not None
    for task in TASKS:
        assert model.decode_heads[task].conv_seg.weight.grad is not None


def test_predict_formats_at_original_size():
    model = MODELS.build(model_cfg()).eval()
    data = model.data_preprocessor(make_batch(n=2, size=(28, 30)), training=False)
    with torch.no_grad():
        out = model(**data, mode='predict')
    s = out[0]
    assert s.pred_sem_seg.data.shape == (1, 28, 30) and s.pred_sem_seg.data.dtype == torch.int64
    assert s.pred_human_parts.data.max() < 7
    for field in ('pred_sal', 'pred_edge'):
        p = getattr(s, field).data
        assert p.shape == (1, 28, 30) and p.is_floating_point() and 0 <= p.min() and p.max() <= 1
    n = s.pred_normals.data
    assert n.shape == (3, 28, 30)
    torch.testing.assert_close(n.norm(dim=0), torch.ones(28, 30))


def test_flip_undone_for_normals_negates_x():
    model = MODELS.build(model_cfg()).eval()
    base = model.data_preprocessor(make_batch(n=1), training=False)
    with torch.no_grad():
        logits = model(**base, mode='tensor')
    flipped = make_batch(n=1, flip=True)['data_samples']
    for s in flipped:
        s.set_metainfo(dict(padding_size=(0, 0, 0, 0)))
    model._postprocess('normals', logits['normals'], flipped)
    plain = make_batch(n=1)['data_samples']
    model._postprocess('normals', logits['normals'], plain)
    a, b = plain[0].pred_normals.data, flipped[0].pred_normals.data
    torch.testing.assert_close(b[0], -a[0].flip(-1))
    torch.testing.assert_close(b[1:], a[1:].flip(-1))


def two_step_predict(model, inputs, samples):
    """The path of heads with their own predict: ``head.predict`` (resize to the padded input)
    then the restore (crop, unflip, resize to the original size)."""
    model._input_resize = lambda head, metas: None  # shadows the static method
    try:
        return model.predict(inputs, samples)
    finally:
        del model._input_resize


@pytest.mark.parametrize('flip, pad', [(False, None), (True, (32, 36))])
def test_predict_resizes_once_with_the_numbers_of_two_resizes(flip, pad):
    """Standard heads (FCNHead, UPerHead, BinaryHead, DenseRegressionHead) hand their own output
    to the restore, which folds in the resize to the padded input (``head.align_corners``) and
    gives the predictions of head.predict + restore up to float32 rounding."""
    cfg = model_cfg(data_preprocessor=dict(type='MultiTaskDataPreProcessor', size=(32, 32),
                                           test_cfg=dict(size=pad)))
    cfg['decode_heads']['sal']['align_corners'] = True
    torch.manual_seed(0)
    model = MODELS.build(cfg).eval()
    for param in model.parameters():  # logits of a few units, not mmseg's 0.01-std init
        param.data.normal_(0, 0.5)
    data = model.data_preprocessor(make_batch(n=2, size=(28, 30), flip=flip), training=False)
    metas = [s.metainfo for s in data['data_samples']]
    for task in TASKS:
        head = model.decode_heads[task]
        assert model._input_resize(head, metas) == (pad or (28, 30), head.align_corners)
    with torch.no_grad():
        fused = model.predict(data['inputs'], copy.deepcopy(data['data_samples']))
        old = two_step_predict(model, data['inputs'], data['data_samples'])
        feats = model.extract_feat(data['inputs'])
        logits = {t: model.decode_heads[t].predict(feats[t], metas, None) for t in TASKS}
    for i, (a, b) in enumerate(zip(fused, old)):
        for task in ('sal', 'normals', 'edge'):
            field = model.specs[task].pred_field
            torch.testing.assert_close(getattr(a, field).data, getattr(b, field).data,
                                       atol=1e-5, rtol=1e-5)
        for task in ('semseg', 'human_parts'):
            field = model.specs[task].pred_field
            differ = getattr(a, field).data[0] != getattr(b, field).data[0]
            restored = model.restore_output(logits[task][i:i + 1], metas[i], model.specs[task])
            top2 = restored.topk(2, dim=0).values
            assert differ.float().mean() < 0.01
            if differ.any():  # only near-ties
                assert (top2[0] - top2[1])[differ].max() < 1e-5


def test_heads_with_their_own_predict_keep_the_two_resizes():
    from mmseg.models.decode_heads import FCNHead

    class OwnPredict(FCNHead):
        calls = 0

        def predict(self, inputs, batch_img_metas, test_cfg):
            type(self).calls += 1
            return super().predict(inputs, batch_img_metas, test_cfg)

    class OwnPredictByFeat(FCNHead):
        def predict_by_feat(self, seg_logits, batch_img_metas):
            return super().predict_by_feat(seg_logits, batch_img_metas)

    model = MODELS.build(model_cfg()).eval()
    data = model.data_preprocessor(make_batch(n=1), training=False)
    metas = [s.metainfo for s in data['data_samples']]
    head = model.decode_heads['semseg']
    head.__class__ = OwnPredictByFeat
    assert model._input_resize(head, metas) is None
    head.__class__ = OwnPredict
    assert model._input_resize(head, metas) is None
    # mmseg's slide inference marks its metas with a torch.Size img_shape
    slide = [dict(metas[0], img_shape=torch.Size((32, 32)))]
    assert model._input_resize(model.decode_heads['human_parts'], slide) is None
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])
    assert OwnPredict.calls == 1 and out[0].pred_sem_seg.data.shape == (1, 28, 30)


def test_tensor_mode_returns_head_outputs():
    model = MODELS.build(model_cfg())
    out = model(torch.randn(1, 3, 32, 32), mode='tensor')
    assert set(out) == set(TASKS)
    assert out['semseg'].shape[1] == 21 and out['normals'].shape[1] == 3 and out['sal'].shape[1] == 1


@pytest.mark.parametrize('override, match', [
    (dict(tasks=('semseg', 'depthh')), "unknown task 'depthh'"),
    (dict(loss_weights=dict(depthh=1.0)), r"model.loss_weights names tasks \['depthh'\]"),
    (dict(loss_weights=dict(sal=float('nan'))), r"model.loss_weights must be finite"),
    (dict(loss_weights=dict(edge=-1.0)), r"must be finite and >= 0, got \{'edge': -1.0\}"),
])
def test_bad_config_errors(override, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(model_cfg(**override))


def test_missing_head_names_task():
    cfg = model_cfg()
    del cfg['decode_heads']['edge']
    with pytest.raises(ValueError, match=r"model.decode_heads has no entry for tasks \['edge'\]"):
        MODELS.build(cfg)


def test_head_that_is_not_a_dict_is_named():
    cfg = model_cfg()
    cfg['decode_heads']['sal'] = None
    with pytest.raises(TypeError, match='model.decode_heads.sal must be a head config dict'):
        MODELS.build(cfg)


def test_missing_ground_truth_names_task():
    model = MODELS.build(model_cfg())
    data = model.data_preprocessor(make_batch(), training=True)
    for s in data['data_samples']:
        del s.gt_sal
    with pytest.raises(KeyError, match="task 'sal'.*gt_sal"):
        model(**data, mode='loss')


def test_init_weights_reaches_every_head_init_cfg():
    # A head's own init_cfg (Constant 7 on conv_seg) and mmseg's default Normal(std=0.01) for
    # the other heads' conv_seg are applied by the segmentor's init_weights.
    cfg = model_cfg()
    cfg['decode_heads']['sal'] = head(
        'BinaryHead', num_convs=1, concat_input=False,
        init_cfg=dict(type='Constant', val=7.0, bias=0.0, override=dict(name='conv_seg')))
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    before = model.decode_heads['semseg'].conv_seg.weight.detach().clone()
    model.init_weights()
    sal = model.decode_heads['sal'].conv_seg.weight
    assert torch.all(sal == 7.0)
    semseg = model.decode_heads['semseg'].conv_seg.weight
    assert not torch.equal(semseg, before)  # re-initialised, not left at PyTorch's default
    assert semseg.std().item() == pytest.approx(0.01, rel=0.2)


def count_block_calls(model):
    calls = []
    for block in model.backbone.blocks:
        block.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    return calls


@pytest.mark.parametrize('shared,passes', [(True, 1), (False, 5)])
def test_shared_backbone_runs_once_for_five_tasks(shared, passes):
    # Plain LoRA shared by all tasks (no router, no task embedding): one pass over the batch.
    # With a task router (ASE) the five tasks run as one batched pass of 5 x N samples.
    adapter = None if shared else dict(num_experts=4, top_k=2, num_shared=1, rank=2)
    backbone = dict(type='ASEViT', arch=dict(embed_dims=C, num_layers=2, num_heads=2),
                    img_size=32, patch_size=8, out_indices=(0, 1), tasks=TASKS,
                    adapter=adapter, lora=dict(rank=2))
    model = MODELS.build(model_cfg(backbone=backbone))
    assert model.backbone.task_agnostic is shared
    calls = count_block_calls(model)
    data = model.data_preprocessor(make_batch(n=2), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert calls == [2 * passes] * 2  # each of the 2 blocks sees N or T * N samples once
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    trainable = {n for n, p in model.backbone.named_parameters() if p.requires_grad}
    reached = {n for n, p in model.backbone.named_parameters() if p.grad is not None}
    assert reached == trainable


def tiny_ase_vit(**kwargs):
    return dict(type='ASEViT', arch=dict(embed_dims=C, num_layers=2, num_heads=2, mlp_ratio=2),
                img_size=32, patch_size=8, out_indices=(0, 1), **kwargs)


def test_backbone_tasks_must_match_the_model_tasks():
    cfg = model_cfg(backbone=tiny_ase_vit(tasks=TASKS[:-1]))
    with pytest.raises(ValueError, match=rf"lacks the model tasks \['{TASKS[-1]}'\]"):
        MODELS.build(cfg)
    cfg['backbone'] = tiny_ase_vit(tasks=TASKS + ('depth', ))
    with pytest.raises(ValueError, match=r"has tasks \['depth'\] that model.tasks"):
        MODELS.build(cfg)


def test_tasks_are_stated_once():
    """A multi-task backbone without ``tasks`` gets the model's; heads and loss weights of
    tasks the model does not have are left out; extra tasks reach nothing."""
    cfg = model_cfg(backbone=tiny_ase_vit(), tasks=('semseg', 'normals'))
    model = MODELS.build(cfg)
    assert model.backbone.tasks == ('semseg', 'normals')
    assert len(model.backbone.routed_families[0].names) == 2
    assert list(model.decode_heads) == ['semseg', 'normals']
    assert model.loss_weights == dict(semseg=1.0, normals=10.0)
    # the routers follow: one per model task in every routed layer
    layer = model.backbone.get_submodule(model.backbone.routed_families[0].names[0])
    assert layer.num_tasks == 2
