"""Shrinkers of the config smoke test for TaskRoutedBackbone and the mmseg backbones it wraps.

Each shrinks a backbone config in place to a tiny size and returns the channel width of every
feature map it outputs (so the heads can read them). The wrapper shrinks the backbone it holds
(through ``shrink_backbone``, which dispatches by type: mmseg's ViT falls to the default ViT
shrinker) and keeps its expert / LoRA settings: the stage count is kept, so ``stages`` lists
stay valid.
"""


def _shrink_swin(backbone: dict) -> list:
    """Swin: the same number of stages, one block each, 8 channels at stage 0 (doubling), one
    head per stage, windows of 2 (stage resolutions of a 64 px crop: 16, 8, 4, 2)."""
    stages = len(backbone.get('depths', (2, 2, 6, 2)))
    backbone.update(embed_dims=8, depths=(1, ) * stages, num_heads=(1, ) * stages,
                    window_size=2, pretrain_img_size=64)
    out = backbone.get('out_indices', (0, 1, 2, 3))
    return [8 * 2**i for i in out]


def _shrink_mit(backbone: dict) -> list:
    """MiT: the same number of stages, one block and one head each, 8 channels throughout."""
    stages = int(backbone.get('num_stages', 4))
    backbone.update(embed_dims=8, num_layers=[1] * stages, num_heads=[1] * stages)
    out = backbone.get('out_indices', (0, 1, 2, 3))
    return [8 for _ in out]


def register(shrinkers: dict, shrink_backbone) -> None:

    def shrink_task_routed(backbone: dict) -> list:
        return shrink_backbone(backbone['backbone'])

    shrinkers['SwinTransformer'] = _shrink_swin
    shrinkers['MixVisionTransformer'] = _shrink_mit
    shrinkers['TaskRoutedBackbone'] = shrink_task_routed
