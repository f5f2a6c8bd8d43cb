"""Head for binary dense maps: saliency and edges."""
from mmseg.registry import MODELS

from .dense_map_head import DenseMapHead


@MODELS.register_module()
class BinaryHead(DenseMapHead):
    """FCN-style decoder with one output channel: the foreground logit ``(N, 1, H, W)``.

    The segmentor turns the logit into a probability with a sigmoid at test time.

    Args:
        loss_decode (dict): Default balanced BCE with per-batch balancing (saliency); use
            ``pos_weight=0.95`` for PASCAL edges.
        **kwargs: ``FCNHead`` / ``BaseDecodeHead`` arguments (``in_channels``, ``channels``,
            ``in_index``, ``input_transform``, ``num_convs``, ...). ``num_classes`` and
            ``out_channels`` are fixed to 2 and 1.
    """

    def __init__(self,
                 loss_decode=dict(type='BalancedBinaryCrossEntropyLoss', pos_weight=None),
                 **kwargs):
        for key in ('num_classes', 'out_channels'):
            if key in kwargs:
                raise ValueError(f'BinaryHead: {key} is fixed (one foreground logit); '
                                 f'remove {key}={kwargs[key]!r} from the head config')
        super().__init__(num_classes=2, out_channels=1, threshold=0.5,
                         loss_decode=loss_decode, **kwargs)
