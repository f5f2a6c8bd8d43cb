"""The ``mmase`` config scope: what mmengine needs to read ``_base_ = ['mmase::toy/...py']``.

mmase registers every module into mmseg's registries (``mmseg.registry``), under its own names.
A config inherited through ``mmase::`` has ``_scope_='mmase'`` on each of its ``type`` dicts
(mmengine's package-scope rule), so mmengine looks for a registry of scope ``mmase`` (it imports
``mmase.registry``). This module gives it one: for each of mmseg's registries an empty child of
scope ``mmase``, which finds every name in its parent (mmase's and mmseg's modules, and
mmengine's through mmseg's). Nothing is registered here and nothing of mmseg's changes; it also
maps the scope ``mmase`` to the package ``mmase`` in mmengine's ``MODULE2PACKAGE`` (a key added,
none replaced), so the configs under ``mmase/.mim/configs`` are found.
"""
from mmengine.config.utils import MODULE2PACKAGE
from mmengine.registry import Registry
from mmseg import registry as mmseg_registry

#: The scope name of mmase's configs and registries (``mmase::`` in ``_base_``).
SCOPE = 'mmase'

MODULE2PACKAGE.setdefault(SCOPE, 'mmase')


def _child(parent: Registry) -> Registry:
    """The ``mmase`` child of one of mmseg's registries (the existing one on a re-import)."""
    return parent.children.get(SCOPE) or Registry(parent.name, parent=parent, scope=SCOPE,
                                                  locations=['mmase'])


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register mmase's modules (importing ``mmase`` does it) and, when asked, make ``mmseg``
    the default scope (where they are registered), as ``mmseg.utils.register_all_modules``.

    mmengine calls ``mmase.utils.register_all_modules(False)`` before the first look-up in a
    registry of scope ``mmase`` that names no import location (``TASK_METERS``, ``TASK_KINDS``).
    """
    import mmase  # noqa: F401
    if init_default_scope:
        from mmengine.registry import init_default_scope as _init_default_scope
        _init_default_scope('mmseg')


RUNNERS = _child(mmseg_registry.RUNNERS)
RUNNER_CONSTRUCTORS = _child(mmseg_registry.RUNNER_CONSTRUCTORS)
LOOPS = _child(mmseg_registry.LOOPS)
HOOKS = _child(mmseg_registry.HOOKS)
DATASETS = _child(mmseg_registry.DATASETS)
DATA_SAMPLERS = _child(mmseg_registry.DATA_SAMPLERS)
TRANSFORMS = _child(mmseg_registry.TRANSFORMS)
MODELS = _child(mmseg_registry.MODELS)
MODEL_WRAPPERS = _child(mmseg_registry.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child(mmseg_registry.WEIGHT_INITIALIZERS)
OPTIMIZERS = _child(mmseg_registry.OPTIMIZERS)
OPTIM_WRAPPERS = _child(mmseg_registry.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child(mmseg_registry.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child(mmseg_registry.PARAM_SCHEDULERS)
METRICS = _child(mmseg_registry.METRICS)
EVALUATOR = _child(mmseg_registry.EVALUATOR)
TASK_UTILS = _child(mmseg_registry.TASK_UTILS)
VISUALIZERS = _child(mmseg_registry.VISUALIZERS)
VISBACKENDS = _child(mmseg_registry.VISBACKENDS)
LOG_PROCESSORS = _child(mmseg_registry.LOG_PROCESSORS)
INFERENCERS = _child(mmseg_registry.INFERENCERS)

__all__ = ['SCOPE', 'register_all_modules', 'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS',
           'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS',
           'WEIGHT_INITIALIZERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
           'PARAM_SCHEDULERS', 'METRICS', 'EVALUATOR', 'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS',
           'LOG_PROCESSORS', 'INFERENCERS']
