"""MultiTaskTTAModel averages views per task: probabilities, unit normals with x negated on a
flipped view, metres."""
import copy
import os.path as osp

import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.structures import PixelData  # noqa: F401
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmase.engine import apply_experiment_tasks

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
TOY = osp.join(ROOT, 'configs', 'toy', 'ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py')


def tiny_segmentor():
    cfg = apply_experiment_tasks(Config.fromfile(TOY))
    cfg.merge_from_dict({'model.backbone.arch.num_layers': 2, 'model.backbone.out_indices': [0, 1]})
    torch.manual_seed(0)
    model_cfg = copy.deepcopy(cfg.model)
    tta = MODELS.build(dict(type='MultiTaskTTAModel', module=model_cfg)).eval()
    return tta


def view(image: torch.Tensor, flip: bool):
    """One packed view of a (3, H, W) uint8 image (flipped when ``flip``)."""
    h, w = image.shape[1:]
    sample = SegDataSample(metainfo=dict(ori_shape=(h, w), img_shape=(h, w), pad_shape=(h, w),
                                         flip=flip, flip_direction='horizontal' if flip else None))
    return dict(inputs=[image.flip(2) if flip else image], data_samples=[sample])


def predict(module, v):
    data = module.data_preprocessor(copy.deepcopy(v), False)
    with torch.no_grad():
        return module.predict(data['inputs'], data['data_samples'])[0]


def tta(model, views):
    data = dict(inputs=[v['inputs'] for v in views], data_samples=[copy.deepcopy(
        v['data_samples']) for v in views])
    return model.test_step(data)[0]


def test_identical_views_give_the_plain_prediction():
    torch.set_num_threads(1)
    model = tiny_segmentor()
    image = torch.randint(0, 255, (3, 40, 48), dtype=torch.uint8)
    plain = predict(model.module, view(image, False))
    merged = tta(model, [view(image, False), view(image, False)])
    for field in ('pred_sem_seg', 'pred_human_parts'):
        assert torch.equal(getattr(merged, field).data, getattr(plain, field).data)
    for field in ('pred_sal', 'pred_edge', 'pred_normals'):
        torch.testing.assert_close(getattr(merged, field).data, getattr(plain, field).data,
                                   atol=1e-5, rtol=0)


def test_flipped_view_unflipped_and_normals_x_negated():
    torch.set_num_threads(1)
    model = tiny_segmentor()
    image = torch.randint(0, 255, (3, 32, 40), dtype=torch.uint8)
    plain = predict(model.module, view(image, False))
    # the flipped pass by hand: predict the mirrored image, mirror back, negate x
    mirrored = predict(model.module, view(image.flip(2), False))
    normals_back = mirrored.pred_normals.data.flip(2).clone()
    normals_back[0] = -normals_back[0]
    expected = F.normalize(plain.pred_normals.data + normals_back, dim=0)
    merged = tta(model, [view(image, False), view(image, True)])
    torch.testing.assert_close(merged.pred_normals.data, expected, atol=1e-5, rtol=0)
    sal = (plain.pred_sal.data + mirrored.pred_sal.data.flip(2)) / 2
    torch.testing.assert_close(merged.pred_sal.data, sal, atol=1e-5, rtol=0)
    assert merged.pred_sem_seg.data.shape == (1, 32, 40)


def test_depth_is_averaged_in_metres():
    torch.set_num_threads(1)
    cfg = apply_experiment_tasks(Config.fromfile(osp.join(
        ROOT, 'configs', 'toy', 'ase_vit-tiny_16-3-1-4_300it_toy-nyud-mt-64x64.py')))
    cfg.merge_from_dict({'model.backbone.arch.num_layers': 2, 'model.backbone.out_indices': [0, 1]})
    torch.manual_seed(0)
    model = MODELS.build(dict(type='MultiTaskTTAModel', module=copy.deepcopy(cfg.model))).eval()
    image = torch.randint(0, 255, (3, 32, 40), dtype=torch.uint8)
    plain = predict(model.module, view(image, False))
    mirrored = predict(model.module, view(image.flip(2), False))
    merged = tta(model, [view(image, False), view(image, True)])
    expected = (plain.pred_depth.data + mirrored.pred_depth.data.flip(2)) / 2
    torch.testing.assert_close(merged.pred_depth.data, expected, atol=1e-5, rtol=0)
