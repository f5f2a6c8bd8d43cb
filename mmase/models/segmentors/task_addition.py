"""Adding tasks to a trained multi-task model: state-dict surgery by task name, and freezing.

A task-conditioned backbone keeps per-task rows in shared tensors: every ``TaskRouter.weight``
``(T, E, C)`` (row = position in ``backbone.tasks``; Task-MoE's task-level routers too), the
parameters a layer lists in ``per_task_parameter_names`` (Task-MoE's ``task_embedding``
``(T, C)``, FGMoE's per-task slices) and ``backbone.task_embed`` ``(T_e, C)`` (row = position in
``backbone.task_embedding_tasks``). :func:`load_with_new_tasks` fills a model
that has more tasks than the checkpoint: every old task's rows are copied from the checkpoint by
name, a new task's rows from its ``router_init`` source task (ours: the same source for its
routers and its task embedding; ``'mean'``: the mean of the old tasks' rows), its decode head keeps its fresh initialisation, and every
other tensor is copied as is (shapes must agree).

Frozen tasks (:class:`TaskFreezer`): the parameters that serve them are not trained: their decode
heads and, because the backbone's shared weights (experts, LoRA, the ViT) serve every task, all
shared backbone weights; only the rows of the other tasks in the per-task tensors train. With
AdamW, weight decay changes a parameter whose gradient is zero, so a per-task tensor that also
holds frozen rows is not just masked: the frozen rows are written back after every optimiser
step (:meth:`TaskFreezer.restore`), and a frozen head is kept in eval mode (its BN statistics
stay those of the checkpoint).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from torch import nn

from ..adapters.routers import TaskRouter
from ..backbones import AdaptedBackbone, MultiTaskBackbone

#: Keys of ``task_addition`` (the segmentor argument).
TASK_ADDITION_KEYS = ('checkpoint', 'router_init', 'frozen_tasks', 'checkpoint_tasks')


def per_task_tensors(model: nn.Module) -> Dict[str, Tuple[nn.Parameter, Tuple[str, ...]]]:
    """``state-dict key -> (parameter, task of each row)`` of the per-task tensors."""
    backbone = model.backbone
    tasks = backbone.tasks if isinstance(backbone, MultiTaskBackbone) else ()
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, TaskRouter) and module.weight.shape[0] == len(tasks) > 1:
            out[f'{name}.weight'] = (module.weight, tasks)
        for pname in getattr(module, 'per_task_parameter_names', ()):  # e.g. TaskMoE, FGMoE
            param = getattr(module, pname)
            if param.shape[0] == len(tasks) > 1:
                out[f'{name}.{pname}'] = (param, tasks)
    embed = backbone.task_embed if isinstance(backbone, AdaptedBackbone) else None
    if isinstance(embed, nn.Parameter):
        out['backbone.task_embed'] = (embed, tuple(backbone.task_embedding_tasks))
    return out


def checkpoint_tasks(checkpoint: dict, given: Optional[Sequence[str]], path: str) -> tuple:
    """The task order of a checkpoint's backbone: ``given``, else its saved config's
    ``model.backbone.tasks``."""
    if given is not None:
        return tuple(given)
    cfg_text = (checkpoint.get('meta') or {}).get('cfg')
    if not cfg_text:
        raise ValueError(f'task_addition.checkpoint={path!r} has no saved config (meta.cfg); '
                         f'give task_addition.checkpoint_tasks=(<its tasks in order>)')
    cfg = Config.fromstring(cfg_text, '.py')
    return tuple(cfg.model.backbone.get('tasks', cfg.model.tasks))


def check_task_addition(cfg: dict, tasks: Sequence[str], old_tasks: Sequence[str],
                        path: str) -> Tuple[Dict[str, str], Tuple[str, ...]]:
    """Check ``task_addition`` against the model and the checkpoint tasks.

    Returns:
        (router_init, frozen_tasks): new task -> source task; the frozen tasks.
    """
    missing = [t for t in old_tasks if t not in tasks]
    if missing:
        raise ValueError(f'model.tasks={tuple(tasks)} lacks the tasks {missing} of '
                         f'task_addition.checkpoint={path!r} (tasks {tuple(old_tasks)})')
    new = [t for t in tasks if t not in old_tasks]
    if not new:
        raise ValueError(f'task_addition: model.tasks={tuple(tasks)} adds no task to those of '
                         f'{path!r}; use load_from to fine-tune')
    router_init = dict(cfg.get('router_init') or {})
    for task, source in router_init.items():
        if task not in new:
            raise ValueError(f'task_addition.router_init[{task!r}]: {task!r} is not a new task '
                             f'(new: {new})')
        if source not in old_tasks and source != 'mean':
            hint = ' (run tools/add_task.py to find it)' if source == 'most_similar' else ''
            raise ValueError(f'task_addition.router_init[{task!r}]={source!r} is not a task of '
                             f'the checkpoint {path!r} (tasks {tuple(old_tasks)}) nor '
                             f"'mean'{hint}")
    absent = [t for t in new if t not in router_init]
    if absent:
        raise ValueError(f'task_addition.router_init has no source task for the new tasks '
                         f'{absent}: name one of {tuple(old_tasks)} (tools/add_task.py '
                         f'--similarity finds the most similar one)')
    frozen = cfg.get('frozen_tasks', ())
    frozen = tuple(old_tasks) if frozen == 'old' else tuple(frozen or ())
    bad = [t for t in frozen if t not in old_tasks]
    if bad:
        raise ValueError(f'task_addition.frozen_tasks={frozen}: {bad} are not tasks of the '
                         f'checkpoint {path!r} (tasks {tuple(old_tasks)})')
    return router_init, frozen


def load_with_new_tasks(model: nn.Module, state: Dict[str, torch.Tensor],
                        old_tasks: Sequence[str], router_init: Dict[str, str],
                        path: str) -> List[str]:
    """Copy ``state`` into ``model`` by task name (see module); returns the keys left fresh.

    Raises:
        ValueError: A tensor of the model is missing from the checkpoint or has another shape
            (other than the new tasks' heads), naming the key and the file.
    """
    rows = per_task_tensors(model)
    new_tasks = [t for t in model.tasks if t not in old_tasks]
    fresh_prefixes = tuple(f'decode_heads.{t}.' for t in new_tasks)
    target = model.state_dict()
    fresh = []
    with torch.no_grad():
        for key, value in target.items():
            if key.startswith(fresh_prefixes):
                fresh.append(key)
                continue
            if key not in state:
                raise ValueError(f'task_addition.checkpoint={path!r} has no {key!r}')
            old = state[key]
            if key in rows:
                param, row_tasks = rows[key]
                old_rows = [t for t in old_tasks if t in row_tasks] if key.endswith(
                    'task_embed') else list(old_tasks)
                if old.shape[0] != len(old_rows) or old.shape[1:] != param.shape[1:]:
                    raise ValueError(f'{path!r}: {key!r} has shape {tuple(old.shape)}; expected '
                                     f'{len(old_rows)} rows (tasks {old_rows}) of '
                                     f'{tuple(param.shape[1:])}')
                for i, task in enumerate(row_tasks):
                    source = router_init.get(task, task)
                    if source == 'mean':  # the mean of the old tasks' rows
                        param[i].copy_(old.mean(dim=0))
                        continue
                    if source not in old_rows:
                        raise ValueError(f'task_addition.router_init[{task!r}]={source!r} has '
                                         f'no row in {key!r} of {path!r} (rows {old_rows})')
                    param[i].copy_(old[old_rows.index(source)])
                continue
            if old.shape != value.shape:
                raise ValueError(f'{path!r}: {key!r} has shape {tuple(old.shape)}, the model '
                                 f'{tuple(value.shape)}')
            value.copy_(old)
    unused = [k for k in state if k not in target]
    if unused:
        raise ValueError(f'task_addition.checkpoint={path!r} holds tensors the model lacks: '
                         f'{unused[:5]}{" ..." if len(unused) > 5 else ""}')
    print_log(f'task_addition: loaded {path} (tasks {tuple(old_tasks)}); new tasks {new_tasks} '
              f'with routers from {router_init}; fresh: {len(fresh)} head tensors',
              logger='current')
    return fresh


class TaskFreezer:
    """Keeps the parameters of ``frozen_tasks`` unchanged while the others train (see module).

    Args:
        model (nn.Module): A ``MultiTaskEncoderDecoder``.
        frozen_tasks (Sequence[str]): Tasks whose parameters do not train.
    """

    def __init__(self, model: nn.Module, frozen_tasks: Sequence[str]):
        self.frozen_tasks = tuple(frozen_tasks)
        self.rows = {key: (param, [i for i, t in enumerate(tasks) if t in self.frozen_tasks])
                     for key, (param, tasks) in per_task_tensors(model).items()}
        self.saved: Dict[str, torch.Tensor] = {}
        self.frozen_heads = [model.decode_heads[t] for t in self.frozen_tasks]
        row_params = {id(p) for p, _ in self.rows.values()}
        heads = {id(p) for t in model.tasks if t not in self.frozen_tasks
                 for p in model.decode_heads[t].parameters()}
        #: parameters that never train (shared backbone weights, frozen heads)
        self.fixed = [p for p in model.parameters() if id(p) not in row_params | heads]

    def apply(self) -> None:
        """requires_grad off for the fixed parameters; frozen heads in eval mode."""
        for param in self.fixed:
            param.requires_grad_(False)
        for param, _ in self.rows.values():
            param.requires_grad_(True)
        for head in self.frozen_heads:
            head.eval()

    @torch.no_grad()
    def snapshot(self) -> None:
        """Remember the frozen rows (after loading the checkpoint)."""
        self.saved = {key: param[idx].detach().clone()
                      for key, (param, idx) in self.rows.items() if idx}

    @torch.no_grad()
    def restore(self) -> None:
        """Write the frozen rows back (after an optimiser step)."""
        for key, value in self.saved.items():
            param, idx = self.rows[key]
            param[idx] = value.to(param.device, param.dtype)

