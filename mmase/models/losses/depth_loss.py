"""L1 depth loss on valid pixels."""
import torch
import torch.nn as nn
from mmseg.registry import MODELS


@MODELS.register_module()
class DepthL1Loss(nn.Module):
    """Mean absolute depth error in metres over pixels with ground truth > 0.

    Args:
        loss_weight (float): Multiplier of the loss. Default 1.0.
        loss_name (str): Key of the loss in the loss dict. Default ``'loss_depth'``.
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'loss_depth'):
        super().__init__()
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, pred: torch.Tensor, target: torch.Tensor, **kwargs) -> torch.Tensor:
        """Args: pred (N, 1, H, W) metres; target (N, 1, H, W) metres, 0 (or non-finite) = invalid."""
        valid = torch.isfinite(target) & (target > 0)
        if not valid.any():
            return pred.sum() * 0.0
        return self.loss_weight * (pred[valid] - target[valid]).abs().mean()

    @property
    def loss_name(self) -> str:
        return self._loss_name
