"""Sliding-window inference (``test_cfg=dict(mode='slide', ...)``): window placement as mmseg's,
overlaps averaged, every task from one pass per window, and the config checks."""
import pytest
import torch
from mmseg.registry import MODELS

import mmase  # noqa: F401
from mmase.models.segmentors.slide_inference import slide_inference, window_starts

from test_multitask_encoder_decoder import make_batch, model_cfg  # (this folder, on sys.path)


def test_window_starts_follow_mmseg():
    assert window_starts(6, 4, 2) == [0, 2]  # the last window ends at the border
    assert window_starts(7, 4, 2) == [0, 2, 3]
    assert window_starts(10, 4, 4) == [0, 4, 6]
    assert window_starts(3, 4, 2) == [0]  # an image smaller than the window: one window


def test_overlaps_are_averaged():
    """Windows of a 4 x 6 image, crop 4 x 4, stride 2: two windows, columns 0-3 and 2-5. Each
    window outputs its own index everywhere: columns 0-1 read 0, 2-3 read (0 + 1) / 2, 4-5 read
    1; a second task outputting the input itself comes back unchanged."""
    calls = []

    def encode_decode(crop, metas):
        calls.append((crop.shape[2:], metas[0]['img_shape']))
        index = float(len(calls) - 1)
        return dict(index=torch.full((1, 1) + crop.shape[2:], index), same=crop[:, :2] * 3)

    inputs = torch.arange(24.).reshape(1, 1, 4, 6).repeat(1, 3, 1, 1)
    out = slide_inference(encode_decode, inputs, [dict(ori_shape=(4, 6))], (4, 4), (2, 2))
    expected = torch.tensor([0., 0., 0.5, 0.5, 1., 1.]).expand(4, 6)
    torch.testing.assert_close(out['index'][0, 0], expected, rtol=0, atol=0)
    torch.testing.assert_close(out['same'], inputs[:, :2] * 3, rtol=0, atol=0)
    # each window ran once, with its own size as an mmseg slide meta (a torch.Size img_shape)
    assert calls == [(torch.Size([4, 4]), torch.Size([4, 4]))] * 2


def test_one_window_over_the_whole_input_is_whole_inference():
    model = MODELS.build(model_cfg()).eval()
    data = model.data_preprocessor(make_batch(n=2, size=(28, 30)), training=False)
    metas = [s.metainfo for s in data['data_samples']]
    size = tuple(data['inputs'].shape[2:])
    with torch.no_grad():
        whole = model.encode_decode(data['inputs'], metas)
        slide = slide_inference(model.encode_decode, data['inputs'], metas, size, size)
    for task in whole:
        torch.testing.assert_close(slide[task], whole[task], rtol=0, atol=0)


def test_slide_predict_runs_every_task_and_restores_to_the_original_size():
    model = MODELS.build(model_cfg(test_cfg=dict(mode='slide', crop_size=(16, 16),
                                                 stride=(12, 12)))).eval()
    data = model.data_preprocessor(make_batch(n=2, size=(28, 30)), training=False)
    passes = []
    model.backbone.register_forward_pre_hook(lambda module, args: passes.append(args[0].shape))
    with torch.no_grad():
        out = model(**data, mode='predict')
    # 28 x 30 (test inputs are not padded): rows at 0, 12 and columns at 0, 12, 14 (the last
    # moved back inside); one backbone pass per window for all five tasks
    assert tuple(data['inputs'].shape[2:]) == (28, 30)
    assert passes == [torch.Size([2, 3, 16, 16])] * 6
    sample = out[0]
    assert sample.pred_sem_seg.data.shape == (1, 28, 30)
    assert sample.pred_normals.data.shape == (3, 28, 30)
    torch.testing.assert_close(sample.pred_normals.data.norm(dim=0), torch.ones(28, 30))
    probability = sample.pred_sal.data
    assert probability.shape == (1, 28, 30) and 0 <= probability.min() <= probability.max() <= 1


@pytest.mark.parametrize('test_cfg, match', [
    (dict(mode='sliding'), r"model.test_cfg.mode='sliding': choose 'whole' or 'slide'"),
    (dict(mode='slide', stride=(8, 8)), r'model.test_cfg.crop_size must be a pair of positive '
     r"ints \(h, w\) for mode='slide', got None"),
    (dict(mode='slide', crop_size=(16, 16), stride=(8, 0)), r'model.test_cfg.stride must be'),
    (dict(mode='slide', crop_size=(16, 16), stride=(8, 20)),
     r'model.test_cfg.stride=\(8, 20\) exceeds crop_size=\(16, 16\)'),
])
def test_bad_slide_configs_are_named(test_cfg, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(model_cfg(test_cfg=test_cfg))
