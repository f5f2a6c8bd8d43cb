"""Multi-task datasets and their transforms (registered in mmseg's registries)."""
from .nyud_labels import NYUD_MT_TASKS
from .nyud_mt import NYUDv2MTDataset
from .pascal_context_mt import PascalContextMTDataset
from .pascal_mt_labels import PASCAL_MT_TASKS
from .toy_nyud_mt import make_toy_nyud_mt
from .toy_pascal_mt import make_toy_pascal_mt
from .transforms import (IgnoreEmptyHumanParts, LoadMultiTaskAnnotations, MultiTaskPad,
                         MultiTaskRandomCrop, MultiTaskRandomFlip, MultiTaskRandomResize,
                         MultiTaskResize, PackMultiTaskInputs)

__all__ = [
    'PascalContextMTDataset', 'PASCAL_MT_TASKS', 'LoadMultiTaskAnnotations', 'MultiTaskResize',
    'MultiTaskRandomResize', 'MultiTaskRandomCrop', 'MultiTaskRandomFlip', 'MultiTaskPad',
    'IgnoreEmptyHumanParts', 'PackMultiTaskInputs', 'make_toy_pascal_mt', 'NYUDv2MTDataset',
    'NYUD_MT_TASKS', 'make_toy_nyud_mt'
]
