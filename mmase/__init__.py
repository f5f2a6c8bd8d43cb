"""mmase: multi-task dense prediction with LoRA mixture-of-experts for MMSegmentation 1.x."""
from . import compat  # noqa: F401  (must come first: mmseg imports mmcv.ops)
from . import datasets, engine, evaluation, models, visualization  # noqa: F401
from . import registry  # noqa: F401  (the mmase:: config scope)
from .tasks import TASK_SPECS, get_task_spec
from .version import __version__

__all__ = ['__version__', 'TASK_SPECS', 'get_task_spec']
