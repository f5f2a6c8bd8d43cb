"""The dense tasks mmase knows: one place for their names, fields and ignore values.

Every layer (datasets, models, evaluation) reads this table instead of spelling task names
itself, so adding a task means adding one ``TaskSpec`` here.

Kinds:
    ``segmentation``: integer class map ``(1, H, W)`` int64, ignore 255; prediction = argmax.
    ``binary``: {0, 1} map ``(1, H, W)`` int64, ignore 255; prediction = foreground probability.
    ``normals``: unit vectors ``(3, H, W)`` float32, invalid = all-zero vector; prediction
        = L2-normalised head output.
    ``depth``: metres ``(1, H, W)`` float32, invalid = 0; prediction = head output.
"""
from dataclasses import dataclass
from typing import Dict, Iterable, Tuple


@dataclass(frozen=True)
class TaskSpec:
    """Static description of one dense task.

    Args:
        name (str): Task key used in configs (``semseg``).
        field (str): Suffix of the data-sample fields: ``gt_<field>`` / ``pred_<field>``.
        kind (str): One of ``segmentation``, ``binary``, ``normals``, ``depth``.
        ignore_value (float): Value marking pixels without a label (padding uses it too).
        lower_is_better (bool): Direction of the task's main metric (for Δm).
    """
    name: str
    field: str
    kind: str
    ignore_value: float
    lower_is_better: bool

    @property
    def gt_field(self) -> str:
        return f'gt_{self.field}'

    @property
    def pred_field(self) -> str:
        return f'pred_{self.field}'

    @property
    def channels(self) -> int:
        """Channels of the ground-truth map: 3 for normals, else 1."""
        return 3 if self.kind == 'normals' else 1

    @property
    def is_float(self) -> bool:
        """Whether the ground truth is a float map (regression) or an integer map."""
        return self.kind in ('normals', 'depth')


TASK_SPECS: Dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec('semseg', 'sem_seg', 'segmentation', 255, False),
        TaskSpec('human_parts', 'human_parts', 'segmentation', 255, False),
        TaskSpec('sal', 'sal', 'binary', 255, False),
        TaskSpec('normals', 'normals', 'normals', 0.0, True),
        TaskSpec('edge', 'edge', 'binary', 255, False),
        TaskSpec('depth', 'depth', 'depth', 0.0, True),
    )
}


def get_task_spec(name: str, field: str = 'tasks') -> TaskSpec:
    """Return the spec of task ``name``; ``field`` names the config field in the error."""
    try:
        return TASK_SPECS[name]
    except KeyError:
        raise ValueError(f'{field}: unknown task {name!r}; known tasks are '
                         f'{sorted(TASK_SPECS)}') from None


def check_tasks(tasks: Iterable[str], field: str = 'tasks',
                allowed: Iterable[str] = None) -> Tuple[str, ...]:
    """Validate a task list (known names, no repeats, optionally a subset of ``allowed``)."""
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
