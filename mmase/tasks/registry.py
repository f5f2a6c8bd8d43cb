"""The declared tasks of this process: declaring, looking up and validating task names.

Tasks are declared by config dicts (``type`` = a kind of :data:`TASK_KINDS`); the six shipped
ones (:mod:`mmase.tasks.shipped`) are declared when :mod:`mmase.tasks` is imported. Components
that read a config (datasets, ``MultiTaskMetric``, ``MultiTaskEncoderDecoder``) take a
``custom_tasks`` list and declare it when they are built, so every process that builds them
(dataloader workers, distributed ranks) knows the tasks. Declaring the same task again with the
same settings does nothing; with other settings it is an error.

``mmase.tasks`` sits below every other package: the models, datasets and evaluator import it
(it imports none of them).
"""
from collections.abc import Mapping
from typing import Dict, Iterable, Iterator, Optional, Sequence, Tuple, Union

from .kinds import TASK_KINDS
from .spec import TaskSpec

_DECLARED: Dict[str, TaskSpec] = {}


class _TaskView(Mapping):
    """Read-only live view ``name -> TaskSpec`` of the declared tasks (``TASK_SPECS``)."""

    def __getitem__(self, name: str) -> TaskSpec:
        return _DECLARED[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(_DECLARED))

    def __len__(self) -> int:
        return len(_DECLARED)

    def __repr__(self) -> str:
        return f'TASK_SPECS({sorted(_DECLARED)})'


#: Every declared task, live (declarations made later appear here).
TASK_SPECS: Mapping = _TaskView()


def build_task(declaration: Union[dict, TaskSpec], field: str = 'custom_tasks') -> TaskSpec:
    """Build a :class:`TaskSpec` from a declaration ``dict(type=<kind>, name=..., ...)``."""
    if isinstance(declaration, TaskSpec):
        return declaration
    if not isinstance(declaration, Mapping):
        raise TypeError(f'{field} must be a task declaration dict(type=..., name=...), got '
                        f'{declaration!r}')
    cfg = dict(declaration)
    kind = cfg.pop('type', None)
    if kind is None:
        raise ValueError(f'{field}.type is missing: the task kind, one of '
                         f'{sorted(TASK_KINDS.module_dict)}')
    cls = TASK_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f'{field}.type={kind!r} is not a registered task kind; known: '
                         f'{sorted(TASK_KINDS.module_dict)} (or register one with '
                         f'@TASK_KINDS.register_module())')
    try:
        return cls(**cfg)
    except TypeError as err:  # an argument the kind does not take (or fixes itself)
        raise ValueError(f'{field} ({kind}): {err}') from None
    except ValueError as err:
        raise ValueError(f'{field}: {err}') from None


def declare_tasks(declarations: Optional[Sequence[Union[dict, TaskSpec]]],
                  field: str = 'custom_tasks') -> Tuple[str, ...]:
    """Declare tasks in this process; returns their names.

    Raises:
        ValueError: A name is declared twice in ``declarations``, a declaration is invalid (its
            kind unknown, a bad value), or a task of that name is declared already with other
            settings; the message names ``field[i]``.
    """
    if declarations is None:
        return ()
    if isinstance(declarations, Mapping) or isinstance(declarations, (str, TaskSpec)):
        raise TypeError(f'{field} must be a list of task declarations, got {declarations!r}')
    specs = []
    seen: Dict[str, int] = {}
    for i, declaration in enumerate(declarations):
        spec = build_task(declaration, f'{field}[{i}]')
        if spec.name in seen:
            raise ValueError(f'{field}[{i}]: task {spec.name!r} is declared twice (also '
                             f'{field}[{seen[spec.name]}])')
        seen[spec.name] = i
        old = _DECLARED.get(spec.name)
        if old is not None and not old.same_as(spec):
            diff = {k: (v, spec.to_dict()[k]) for k, v in old.to_dict().items()
                    if spec.to_dict()[k] != v}
            raise ValueError(f'{field}[{i}]: task {spec.name!r} is already declared with other '
                             f'settings (declared vs here: {diff}); give the task another name')
        clash = [t.name for t in _DECLARED.values()
                 if t.field == spec.field and t.name != spec.name]
        if clash:
            raise ValueError(f'{field}[{i}].field={spec.field!r}: task {clash[0]!r} uses that '
                             f'field already')
        specs.append(spec)
    for spec in specs:
        _DECLARED.setdefault(spec.name, spec)
    return tuple(s.name for s in specs)


def undeclare_task(name: str) -> None:
    """Forget a declared task (tests); the shipped tasks cannot be removed."""
    from .shipped import SHIPPED_TASKS
    if name in {d['name'] for d in SHIPPED_TASKS}:
        raise ValueError(f'task {name!r} is shipped with mmase and cannot be undeclared')
    _DECLARED.pop(name, None)


def get_task_spec(name: str, field: str = 'tasks') -> TaskSpec:
    """Return the spec of task ``name``; ``field`` names the config field in the error."""
    try:
        return _DECLARED[name]
    except (KeyError, TypeError):
        raise ValueError(f'{field}: unknown task {name!r}; known tasks are {sorted(_DECLARED)} '
                         f'(declare others with custom_tasks=[dict(type=<kind>, name=...)])'
                         ) from None


def task_spec_by_gt_field(gt_field: str) -> Optional[TaskSpec]:
    """The declared task whose ground truth is ``gt_field`` (``'gt_sem_seg'``), or None."""
    for spec in _DECLARED.values():
        if spec.gt_field == gt_field:
            return spec
    return None


def check_tasks(tasks: Iterable[str], field: str = 'tasks',
                allowed: Iterable[str] = None) -> Tuple[str, ...]:
    """Validate a task list (declared names, no repeats, optionally a subset of ``allowed``)."""
    if isinstance(tasks, str):
        tasks = (tasks, )
    tasks = tuple(tasks)
    if not tasks:
        raise ValueError(f'{field}: at least one task is required')
    allowed = tuple(allowed) if allowed is not None else None
    for name in tasks:
        get_task_spec(name, field)
        if allowed is not None and name not in allowed:
            raise ValueError(f'{field}: task {name!r} is not available here; '
                             f'choose from {allowed}')
    if len(set(tasks)) != len(tasks):
        raise ValueError(f'{field}: repeated task in {tasks}')
    return tasks

