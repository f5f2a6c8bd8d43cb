"""``MultiTaskRunner``: mmengine's Runner that applies the config's top-level ``tasks`` first and,
in a multi-process run, keeps the ranks' buffers identical."""
import copy

from mmengine.runner import Runner
from mmseg.registry import RUNNERS

from mmase.utils.launch import add_buffer_sync
from .experiment_tasks import apply_experiment_tasks


@RUNNERS.register_module()
class MultiTaskRunner(Runner):
    """mmengine's ``Runner`` whose :meth:`from_cfg` gives the config's top-level ``tasks`` to
    the model, datasets and evaluators that state none (:func:`apply_experiment_tasks`).

    ``configs/_base_/default_runtime*.py`` set ``runner_type = 'MultiTaskRunner'``, so mmseg's
    own ``tools/train.py`` (``RUNNERS.build(cfg)``) and mmase's tools build through it. A
    multi-process run (``cfg.launcher`` other than 'none') also gets ``SyncRankBuffersHook``, as
    mmase's tools add it: every rank validates and saves with rank 0's buffers.
    """

    @classmethod
    def from_cfg(cls, cfg) -> 'Runner':
        """Build from a whole config (copied: ``cfg`` itself is not changed)."""
        cfg = apply_experiment_tasks(copy.deepcopy(cfg))
        if cfg.get('launcher', 'none') != 'none':
            add_buffer_sync(cfg)
        return super().from_cfg(cfg)
