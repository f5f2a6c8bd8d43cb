"""Task names as the models see them: the models need only how many tasks there are and what
they are called, never what kind of task each is (that lives with the data and the metric)."""
from typing import Iterable, Optional, Tuple


def check_task_names(tasks: Iterable[str], field: str = 'tasks',
                     allowed: Optional[Iterable[str]] = None) -> Tuple[str, ...]:
    """Validate a list of task names (non-empty strings, at least one, no repeats).

    Args:
        tasks (str | Iterable[str]): One name or several.
        field (str): Config field named in the error (``'backbone.tasks'``).
        allowed (Iterable[str], optional): The names accepted here (a model's own tasks).

    Returns:
        tuple[str]: The names, in order.
    """
    if isinstance(tasks, str):
        tasks = (tasks, )
    tasks = tuple(tasks)
    if not tasks:
        raise ValueError(f'{field}: at least one task is required')
    for name in tasks:
        if not isinstance(name, str) or not name:
            raise ValueError(f'{field}: task names must be non-empty strings, got {name!r}')
    if allowed is not None:
        allowed = tuple(allowed)
        for name in tasks:
            if name not in allowed:
                raise ValueError(f'{field}: task {name!r} is not one of this model\'s tasks '
                                 f'{allowed}')
    if len(set(tasks)) != len(tasks):
        raise ValueError(f'{field}: repeated task in {tasks}')
    return tasks
