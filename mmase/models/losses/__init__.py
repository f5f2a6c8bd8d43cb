from .balanced_bce_loss import BalancedBinaryCrossEntropyLoss
from .depth_loss import DepthL1Loss
from .normals_loss import NormalsL1Loss

__all__ = ['BalancedBinaryCrossEntropyLoss', 'DepthL1Loss', 'NormalsL1Loss']
