"""Base of the heads that predict non-categorical dense maps (binary, normals, depth)."""
from typing import List

import torch
from mmseg.models.decode_heads import FCNHead
from mmseg.models.utils import resize
from torch import Tensor


class DenseMapHead(FCNHead):
    """An :class:`FCNHead` decoder whose loss compares the raw output map with a dense target.

    mmseg's ``loss_by_feat`` assumes class-index labels (it squeezes them to ``(N, H, W)`` long and
    reports pixel accuracy). Binary and regression targets keep their own dtype and channels
    ``(N, C, H, W)``; each loss in ``loss_decode`` is called as
    ``loss(pred, target, ignore_index=self.ignore_index)`` and knows which pixels are invalid.

    The segmentor passes each task's ground truth as ``gt_sem_seg`` of the samples it hands
    to the head, so the head is unaware of task names. Arguments are those of ``FCNHead``.
    """

    def loss_by_feat(self, seg_logits: Tensor, batch_data_samples: List) -> dict:
        """Args: seg_logits (N, C, h, w); samples carry ``gt_sem_seg`` (C', H, W)."""
        target = self._stack_batch_gt(batch_data_samples)
        pred = resize(seg_logits, size=target.shape[2:], mode='bilinear',
                      align_corners=self.align_corners)
        losses_decode = self.loss_decode if isinstance(self.loss_decode, torch.nn.ModuleList) \
            else [self.loss_decode]
        losses = dict()
        for loss_decode in losses_decode:
            value = loss_decode(pred, target, ignore_index=self.ignore_index)
            name = loss_decode.loss_name
            losses[name] = losses[name] + value if name in losses else value
        return losses
