"""Head for regression maps: surface normals (3 channels) and depth (1 channel)."""
from mmseg.registry import MODELS

from .dense_map_head import DenseMapHead


@MODELS.register_module()
class DenseRegressionHead(DenseMapHead):
    """FCN-style decoder regressing ``out_channels`` values per pixel ``(N, C, H, W)``.

    Normals: ``out_channels=3`` with :class:`NormalsL1Loss` (the segmentor L2-normalises the
    output at test time). Depth: ``out_channels=1`` with :class:`DepthL1Loss`, in metres.

    Args:
        out_channels (int): Regressed channels. Default 3.
        loss_decode (dict): Default ``NormalsL1Loss``.
        **kwargs: ``FCNHead`` / ``BaseDecodeHead`` arguments; ``num_classes`` is set to
            ``out_channels``.
    """

    def __init__(self, out_channels: int = 3, loss_decode=dict(type='NormalsL1Loss'), **kwargs):
        if kwargs.pop('num_classes', out_channels) != out_channels:
            raise ValueError('DenseRegressionHead: num_classes must equal out_channels '
                             f'({out_channels}) or be left out')
        super().__init__(num_classes=out_channels, out_channels=out_channels,
                         threshold=0.0, loss_decode=loss_decode, **kwargs)
