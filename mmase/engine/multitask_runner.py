"""``MultiTaskRunner``: mmengine's Runner that applies the config's top-level ``tasks`` first."""
import copy

from mmengine.runner import Runner
from mmseg.registry import RUNNERS

from .experiment_tasks import apply_experiment_tasks


@RUNNERS.register_module()
class MultiTaskRunner(Runner):
    """mmengine's ``Runner`` whose :meth:`from_cfg` gives the config's top-level ``tasks`` to
    the model, datasets and evaluators that state none (:func:`apply_experiment_tasks`).

    ``configs/_base_/default_runtime*.py`` set ``runner_type = 'MultiTaskRunner'``, so mmseg's
    own ``tools/train.py`` (``RUNNERS.build(cfg)``) and mmase's tools build through it.
    """

    @classmethod
    def from_cfg(cls, cfg) -> 'Runner':
        """Build from a whole config (copied: ``cfg`` itself is not changed)."""
        return super().from_cfg(apply_experiment_tasks(copy.deepcopy(cfg)))
