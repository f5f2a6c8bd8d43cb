"""Multi-task data transforms (registered in mmseg's TRANSFORMS)."""
from .formatting import PackMultiTaskInputs
from .geometric import (MultiTaskPad, MultiTaskRandomCrop, MultiTaskRandomFlip,
                        MultiTaskRandomResize, MultiTaskResize)
from .ignore_empty_parts import IgnoreEmptyHumanParts
from .loading import LoadMultiTaskAnnotations, LoadMultiTaskImageFromFile

__all__ = [
    'LoadMultiTaskImageFromFile', 'LoadMultiTaskAnnotations', 'MultiTaskResize',
    'MultiTaskRandomResize', 'MultiTaskRandomCrop', 'MultiTaskRandomFlip', 'MultiTaskPad',
    'IgnoreEmptyHumanParts', 'PackMultiTaskInputs'
]
