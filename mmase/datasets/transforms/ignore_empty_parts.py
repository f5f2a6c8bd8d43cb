"""Turning human-part maps without any part into ignore regions (training only)."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from mmase.tasks import get_task_spec


@TRANSFORMS.register_module()
class IgnoreEmptyHumanParts(BaseTransform):
    """Mark a human-part map that holds no part pixel as ignore everywhere.

    The public PASCAL-MT pipelines (ASTMT/MTI-Net/InvPT ``AddIgnoreRegions``) do this after
    cropping, so images (or crops) without persons do not teach the parts head that
    everything is background. If every pixel of ``gt_human_parts`` is background (0) or ignore
    (255), the whole map becomes 255. Samples without ``gt_human_parts`` (task not loaded)
    pass unchanged.

    Use it in training pipelines after the geometric transforms. Validation keeps the map
    all background; the parts metric leaves such images out.
    """

    def transform(self, results: dict) -> dict:
        """Replace an all-background ``gt_human_parts`` map by an all-ignore one."""
        key = get_task_spec('human_parts').gt_field
        if key in results:
            parts = results[key]
            ignore = get_task_spec('human_parts').ignore_value
            if np.all((parts == 0) | (parts == ignore)):
                results[key] = np.full_like(parts, ignore)
        return results
