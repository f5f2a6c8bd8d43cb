"""Balanced binary cross-entropy for saliency and edge maps (ASTMT / InvPT style)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS


@MODELS.register_module()
class BalancedBinaryCrossEntropyLoss(nn.Module):
    """Class-balanced BCE on logits over the labelled pixels.

    ``loss = -mean_valid(w * y * log(sigmoid(x)) + (1 - w) * (1 - y) * log(1 - sigmoid(x)))``

    Args:
        pos_weight (float, optional): Weight ``w`` of positive pixels (0.95 for PASCAL edges).
            ``None`` balances each batch by its own share of negatives (``w = #neg / #valid``),
            as ASTMT does for saliency; ``0.5`` is plain BCE scaled by 1/2.
        loss_weight (float): Multiplier of the loss. Default 1.0.
        loss_name (str): Key of the loss in the loss dict. Default ``'loss_bce'``.
    """

    def __init__(self, pos_weight: Optional[float] = None, loss_weight: float = 1.0,
                 loss_name: str = 'loss_bce'):
        super().__init__()
        if pos_weight is not None and not 0.0 <= pos_weight <= 1.0:
            raise ValueError(f'pos_weight={pos_weight} must lie in [0, 1]')
        self.pos_weight = pos_weight
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, logits: torch.Tensor, target: torch.Tensor,
                ignore_index: int = 255, **kwargs) -> torch.Tensor:
        """Args: logits (N, 1, H, W); target (N, 1, H, W) or (N, H, W) in {0, 1, ignore_index}."""
        target = target.reshape(logits.shape)
        valid = target != ignore_index
        num_valid = valid.sum()
        if num_valid == 0:
            return logits.sum() * 0.0
        label = (target == 1).to(logits.dtype)
        if self.pos_weight is None:
            weight_pos = ((label == 0) & valid).sum().to(logits.dtype) / num_valid
        else:
            weight_pos = torch.tensor(self.pos_weight, dtype=logits.dtype, device=logits.device)
        # log(sigmoid(x)) and log(1 - sigmoid(x)) computed stably.
        log_pos = -F.softplus(-logits)
        log_neg = -F.softplus(logits)
        per_pixel = -(weight_pos * label * log_pos + (1 - weight_pos) * (1 - label) * log_neg)
        return self.loss_weight * per_pixel[valid].sum() / num_valid

    @property
    def loss_name(self) -> str:
        return self._loss_name
