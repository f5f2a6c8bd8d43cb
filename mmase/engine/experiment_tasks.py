"""Tasks stated once per experiment: a config's top-level ``tasks`` (and ``custom_tasks``)
reach the model, the datasets and the evaluators.

A config writes ``tasks = ('semseg', 'normals')`` once, at the top level; a leaf config that
inherits a five-task experiment and writes that one line trains, loads and evaluates two tasks.
:func:`apply_experiment_tasks` copies the tuple, where it is absent, to

- ``model.tasks`` (when the model's registered class takes ``tasks``; the segmentor hands it on
  to its multi-task backbone and leaves out the heads / loss weights of other tasks),
- every dataset of ``train/val/test_dataloader`` whose registered class takes ``tasks``
  (wrappers are walked through their ``dataset`` / ``datasets`` keys),
- every ``MultiTaskMetric`` (or subclass) of ``val/test_evaluator`` (a dict, a list, or an
  ``Evaluator`` dict with ``metrics``).

A top-level ``custom_tasks`` (task declarations, ``mmase.tasks``) goes the same way, to the
same fields where their class takes ``custom_tasks`` (the segmentor, the multi-task datasets,
``MultiTaskMetric``), so a config declares a new task once and every process that builds one
of them knows it.

An explicit value wins: a field that states its own ``tasks`` keeps it (logged when it differs
from the top-level tuple), so a config can e.g. evaluate fewer tasks than it trains. A config
without a top-level ``tasks`` is left as it is. It runs after ``--cfg-options`` are merged:
``MultiTaskRunner.from_cfg`` and every mmase entry point that builds from a config file call it.
"""
import inspect
from typing import Dict, Iterator, List, Optional, Tuple

from mmengine.logging import print_log

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
EVALUATORS = ('val_evaluator', 'test_evaluator')


def _registered(registry, type_) -> Optional[type]:
    """The class a config ``type`` names in ``registry`` (None when unknown)."""
    if isinstance(type_, type):
        return type_
    if not isinstance(type_, str):
        return None
    try:
        return registry.get(type_)
    except Exception:  # noqa: BLE001 (an unknown scope raises in mmengine): not ours to judge
        return None


def _takes(registry, cfg: dict, key: str = 'tasks') -> bool:
    """Whether the class ``cfg['type']`` names takes the argument ``key``."""
    cls = _registered(registry, cfg.get('type'))
    if cls is None:
        return False
    target = cls.__init__ if isinstance(cls, type) else cls
    try:
        return key in inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False


def _datasets(cfg, path: str) -> Iterator[Tuple[str, dict]]:
    """(field path, dataset dict) of a dataset config and of every dataset it wraps."""
    if not isinstance(cfg, dict):
        return
    yield path, cfg
    if isinstance(cfg.get('dataset'), dict):
        yield from _datasets(cfg['dataset'], f'{path}.dataset')
    if isinstance(cfg.get('datasets'), (list, tuple)):
        for i, child in enumerate(cfg['datasets']):
            yield from _datasets(child, f'{path}.datasets[{i}]')


def _metrics(cfg, path: str) -> Iterator[Tuple[str, dict]]:
    """(field path, metric dict) of an evaluator config: a dict, a list, or ``metrics=``."""
    if isinstance(cfg, (list, tuple)):
        for i, child in enumerate(cfg):
            yield from _metrics(child, f'{path}[{i}]')
    elif isinstance(cfg, dict):
        if 'metrics' in cfg:
            yield from _metrics(cfg['metrics'], f'{path}.metrics')
        else:
            yield path, cfg


def _is_multitask_metric(cfg: dict) -> bool:
    from mmseg.registry import METRICS

    from mmase.evaluation.metrics.multitask_metric import MultiTaskMetric
    cls = _registered(METRICS, cfg.get('type'))
    return isinstance(cls, type) and issubclass(cls, MultiTaskMetric)


def task_fields(cfg, key: str = 'tasks') -> List[Tuple[str, dict]]:
    """Every (field path, dict) that :func:`apply_experiment_tasks` gives the top-level ``key``
    (``'tasks'`` or ``'custom_tasks'``): the model, each dataset, each ``MultiTaskMetric``,
    where the class takes ``key``."""
    from mmseg.registry import DATASETS, METRICS, MODELS
    fields = []
    model = cfg.get('model')
    if isinstance(model, dict) and _takes(MODELS, model, key):
        fields.append(('model', model))
    for name in DATALOADERS:
        loader = cfg.get(name)
        if isinstance(loader, dict):
            fields += [(p, d) for p, d in _datasets(loader.get('dataset'), f'{name}.dataset')
                       if _takes(DATASETS, d, key)]
    for name in EVALUATORS:
        fields += [(p, m) for p, m in _metrics(cfg.get(name), name)
                   if _is_multitask_metric(m) and _takes(METRICS, m, key)]
    return fields


def experiment_tasks(cfg) -> Optional[Tuple[str, ...]]:
    """The config's top-level ``tasks`` as a tuple (None when absent). Raises ValueError when it
    is not a sequence of task names."""
    tasks = cfg.get('tasks')
    if tasks is None:
        return None
    if isinstance(tasks, str) or not isinstance(tasks, (list, tuple)) or not all(
            isinstance(t, str) for t in tasks):
        raise ValueError(f'config field tasks must be a tuple of task names, e.g. '
                         f"tasks = ('semseg', 'normals'), got {tasks!r}")
    return tuple(tasks)


def experiment_custom_tasks(cfg) -> Optional[list]:
    """The config's top-level ``custom_tasks`` as a list of dicts (None when absent). Raises
    ValueError when it is not a list of task declarations (dicts)."""
    declarations = cfg.get('custom_tasks')
    if declarations is None:
        return None
    if not isinstance(declarations, (list, tuple)) or not all(
            isinstance(d, dict) for d in declarations):
        raise ValueError(f'config field custom_tasks must be a list of task declarations, e.g. '
                         f"custom_tasks = [dict(type='DenseTask', name=...)], got "
                         f'{declarations!r}')
    return list(declarations)


def apply_experiment_tasks(cfg):
    """Give the top-level ``tasks`` and ``custom_tasks`` of ``cfg`` to every model / dataset /
    ``MultiTaskMetric`` field that does not state its own (see the module docstring). In place;
    returns ``cfg``."""
    declarations = experiment_custom_tasks(cfg)
    if declarations is not None:
        for path, field in task_fields(cfg, 'custom_tasks'):
            if field.get('custom_tasks') is None:
                field['custom_tasks'] = declarations
    tasks = experiment_tasks(cfg)
    if tasks is None:
        return cfg
    for path, field in task_fields(cfg):
        if field.get('tasks') is None:
            field['tasks'] = tasks
        elif tuple(field['tasks']) != tasks:
            print_log(f'{path}.tasks={tuple(field["tasks"])} differs from the config\'s '
                      f'tasks={tasks}; the explicit {path}.tasks is kept', logger='current')
    return cfg


def resolved_tasks(cfg) -> Dict[str, Optional[Tuple[str, ...]]]:
    """Field path -> the tasks it builds with (the class default where it states none; the
    segmentor's hand-off for the backbone). For comparing configs before / after a change."""
    from mmseg.registry import DATASETS, METRICS, MODELS

    from mmase.models.backbones import MultiTaskBackbone
    out = {'tasks': experiment_tasks(cfg)}
    for path, field in task_fields(cfg):
        tasks = field.get('tasks')
        if tasks is None:
            registry = MODELS if path == 'model' else (
                METRICS if 'evaluator' in path else DATASETS)
            target = _registered(registry, field.get('type'))
            default = inspect.signature(target.__init__).parameters['tasks'].default
            tasks = None if default is inspect.Parameter.empty else default
        out[path] = None if tasks is None else tuple(tasks)
    backbone = (cfg.get('model') or {}).get('backbone')
    if isinstance(backbone, dict):
        cls = _registered(MODELS, backbone.get('type'))
        if 'tasks' in backbone:
            out['model.backbone'] = tuple(backbone['tasks'])
        elif isinstance(cls, type) and issubclass(cls, MultiTaskBackbone):
            out['model.backbone'] = out.get('model')  # the segmentor hands its tasks on
    return out
