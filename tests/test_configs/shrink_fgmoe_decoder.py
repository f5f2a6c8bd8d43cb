"""Config smoke test: shrinking ``FrozenEncoderMTDecoder`` (a frozen encoder and the FGMoE
decoder): the encoder by its own family's shrinker, the decoder to 32 channels reading the
shrunk encoder's maps."""
import math

#: The shrunk decoder: 32 channels, 2 heads; its MLP hidden size (128 at ratio 4) is widened so
#: that ``mlp_moe.num_experts`` divides it.
TINY_DECODER = dict(embed_dims=32, num_heads=2, mlp_ratio=4.0)


def shrink_frozen_encoder_mt_decoder(backbone: dict, shrink_backbone) -> list:
    """Shrink in place; returns the decoder's output widths (one per ``out_indices`` block)."""
    widths = shrink_backbone(backbone['encoder'])
    decoder = backbone['decoder']
    decoder['in_channels'] = list(widths)
    fuse_index = decoder.get('fuse_index', -1)
    if not -len(widths) <= fuse_index < len(widths):
        decoder['fuse_index'] = -1
    hidden = int(TINY_DECODER['embed_dims'] * TINY_DECODER['mlp_ratio'])
    num_experts = (decoder.get('mlp_moe') or {}).get('num_experts', 16)
    hidden = math.lcm(hidden, num_experts)
    decoder.update(TINY_DECODER, mlp_ratio=hidden / TINY_DECODER['embed_dims'])
    outs = decoder.get('out_indices')
    num_outs = decoder.get('num_blocks', 2) if outs is None else len(outs)
    return [TINY_DECODER['embed_dims']] * num_outs


def register(shrinkers: dict, shrink_backbone) -> None:
    shrinkers['FrozenEncoderMTDecoder'] = (
        lambda backbone: shrink_frozen_encoder_mt_decoder(backbone, shrink_backbone))
