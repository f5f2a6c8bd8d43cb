"""Shared by the inference tests: paths, the tiny toy config (2 ViT blocks), toy images.

(A module of its own: ``conftest`` names clash when the whole suite is collected.)
"""
import os.path as osp
from typing import NamedTuple

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(ROOT, 'configs', 'toy', 'ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py')
TOY_IMAGES = osp.join(ROOT, 'data', 'toy_pascal_mt', 'JPEGImages')
#: 2 ViT blocks: the shrunk toy model of the tests.
TINY_MODEL = {'model.backbone.arch.num_layers': 2, 'model.backbone.out_indices': [0, 1]}


class TinyModel(NamedTuple):
    config: Config  #: the toy config with TINY_MODEL merged (data_root absolute)
    checkpoint: str  #: random weights, meta.dataset_meta = the dataset's METAINFO


def tiny_config() -> Config:
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.merge_from_dict(TINY_MODEL)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = osp.join(ROOT, 'data', 'toy_pascal_mt')
    return cfg


def toy_image(index: int) -> str:
    return osp.join(TOY_IMAGES, f'toy_{index:06d}.jpg')
