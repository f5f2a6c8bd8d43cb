"""The config check on decode heads: a head swapped by changing only its ``type`` (without
``_delete_``) is named, with the keys its new type does not take or sets itself."""
import pytest
from mmengine.config import Config
from mmseg.registry import MODELS

from mmase.engine.config_check import check_config, check_head_keys, fixed_keys

BASE = dict(model=dict(type='MultiTaskEncoderDecoder', decode_heads=dict(
    semseg=dict(type='FCNHead', in_channels=64, channels=32, num_convs=1, concat_input=False,
                input_transform='resize_concat', in_index=[0, 1], num_classes=21))))


def _config(tmp_path, override: str) -> Config:
    (tmp_path / 'base.py').write_text(f'model = {BASE["model"]!r}\n')
    (tmp_path / 'swap.py').write_text(f"_base_ = ['base.py']\n{override}\n")
    return Config.fromfile(str(tmp_path / 'swap.py'))


def test_fixed_keys_read_from_the_super_calls():
    assert fixed_keys(MODELS.get('UPerHead')) == {'input_transform'}  # mmseg passes it itself
    assert fixed_keys(MODELS.get('FCNHead')) == set()


def test_a_type_only_swap_is_named_with_delete_suggested(tmp_path):
    cfg = _config(tmp_path, "model = dict(decode_heads=dict(semseg=dict(type='UPerHead', "
                            "pool_scales=(1, 2))))")
    with pytest.raises(ValueError) as error:
        check_head_keys(cfg)
    message = str(error.value)
    assert message.startswith("model.decode_heads.semseg: UPerHead does not accept "
                              "['concat_input', 'num_convs'] and sets ['input_transform'] itself")
    assert '`_delete_=True` in model.decode_heads.semseg' in message
    with pytest.raises(ValueError, match='UPerHead does not accept'):
        check_config(cfg)  # what tools/train.py and tools/test.py run


def test_a_whole_head_replaced_with_delete_passes(tmp_path):
    cfg = _config(tmp_path, "model = dict(decode_heads=dict(semseg=dict(_delete_=True, "
                            "type='UPerHead', in_channels=[64, 64], in_index=[0, 1], "
                            "channels=32, pool_scales=(1, 2), num_classes=21)))")
    check_head_keys(cfg)
    assert 'num_convs' not in cfg.model.decode_heads.semseg


def test_single_head_segmentors_are_checked_too():
    cfg = Config(dict(model=dict(type='EncoderDecoder', decode_head=dict(
        type='FCNHead', in_channels=8, channels=4, num_classes=2, pool_scales=(1, 2)))))
    with pytest.raises(ValueError, match=r"model\.decode_head: FCNHead does not accept "
                                         r"\['pool_scales'\]"):
        check_head_keys(cfg)
