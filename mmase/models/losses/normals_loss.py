"""L1 loss between normalised predicted and ground-truth surface normals."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS


@MODELS.register_module()
class NormalsL1Loss(nn.Module):
    """Mean absolute error of unit normals over valid pixels (InvPT / MTI-Net style).

    The prediction is L2-normalised per pixel first; pixels whose ground truth is the all-zero
    vector are invalid and ignored. The mean runs over valid pixels x 3 components.

    Args:
        loss_weight (float): Multiplier of the loss. Default 1.0.
        loss_name (str): Key of the loss in the loss dict. Default ``'loss_normals'``.
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'loss_normals'):
        super().__init__()
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, pred: torch.Tensor, target: torch.Tensor, **kwargs) -> torch.Tensor:
        """Args: pred (N, 3, H, W) raw head output; target (N, 3, H, W) unit vectors or 0."""
        valid = (target != 0).any(dim=1, keepdim=True).expand_as(target)
        if not valid.any():
            return pred.sum() * 0.0
        pred = F.normalize(pred, p=2, dim=1)
        return self.loss_weight * (pred[valid] - target[valid]).abs().mean()

    @property
    def loss_name(self) -> str:
        return self._loss_name
