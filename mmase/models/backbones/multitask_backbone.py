"""The declared multi-task backbone interface, and the pass every implementation shares.

:class:`MultiTaskBackbone` is what the segmentor, ``FrozenEncoderMTDecoder``, the analysis
tools (``expert_usage``, ``count_params``), ``ExpertActivationHook`` and task addition rely on,
with no attribute probing:

- ``tasks`` (tuple of names; task ``i`` uses router ``i``);
- :meth:`forward_tasks` ``(inputs, tasks) -> {task: feature maps}`` (the batched per-task
  pass) and :meth:`forward` ``(inputs, task)``;
- ``task_agnostic``: no router and no task embedding, so one pass serves every task;
- :meth:`pop_aux_losses` (router losses since the last call);
- :meth:`routing_stats` / :meth:`reset_routing_stats` / ``record_routing``;
- ``routed_families`` (typed :class:`~mmase.models.injection.RoutedFamily`) and
  :meth:`routed_layers`.

Implementations provide the two halves of a forward: ``_embed(inputs) -> (tokens, grid)``,
the task-independent stem, and ``_encode(tokens, grid) -> tuple of maps``, which reads the task
from ``self.task_context`` (set here, once per pass: an int, or a LongTensor ``(N,)`` of task
indices in the batched pass) like every routed layer inside.
"""
import abc
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule

from mmase.models.injection import RoutedFamily, TaskContext
from mmase.models.task_names import check_task_names

MULTITASK_MODES = ('batched', 'sequential')


class MultiTaskBackbone(BaseModule, metaclass=abc.ABCMeta):
    """A backbone whose features depend on the task (see the module docstring).

    Args:
        tasks (Sequence[str]): Task names, in order.
        multitask_mode (str): How :meth:`forward_tasks` runs several tasks through a
            task-conditioned backbone: ``'batched'`` (one pass with the batch repeated per
            task and a per-sample task index) or ``'sequential'`` (one pass per task). A
            task-agnostic backbone runs once for all tasks. Default: 'batched'.
        record_routing (bool): Record routing statistics. Default: False.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, tasks: Sequence[str], multitask_mode: str = 'batched',
                 record_routing: bool = False, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.tasks = check_task_names(tasks, 'tasks')
        if multitask_mode not in MULTITASK_MODES:
            raise ValueError(f'multitask_mode={multitask_mode!r} is not one of {MULTITASK_MODES}')
        self.multitask_mode = multitask_mode
        self.task_context = TaskContext()
        self.routed_families: Tuple[RoutedFamily, ...] = ()
        self._aux_tasks: List[str] = []
        self._record_routing = bool(record_routing)

    # ------------------------------------------------------------------------------------------
    # what implementations provide
    @property
    @abc.abstractmethod
    def task_agnostic(self) -> bool:
        """No router and no task embedding: every task gets the same features (one pass)."""

    @abc.abstractmethod
    def _embed(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """``(N, 3, H, W)`` -> the task-independent stem's tokens ``(N, ...)`` and grid."""

    @abc.abstractmethod
    def _encode(self, tokens: torch.Tensor, grid: Tuple[int, int]) -> Tuple[torch.Tensor, ...]:
        """Tokens -> feature maps, for the task index in ``self.task_context``."""

    # ------------------------------------------------------------------------------------------
    # the pass
    def _task_index(self, task: str) -> int:
        if task not in self.tasks:
            raise KeyError(f'task {task!r} is not one of this backbone\'s tasks {self.tasks}')
        return self.tasks.index(task)

    def _encode_for(self, tokens, grid, task) -> Tuple[torch.Tensor, ...]:
        with self.task_context.use(task):
            return tuple(self._encode(tokens, grid))

    def forward(self, inputs: torch.Tensor, task: str) -> Tuple[torch.Tensor, ...]:
        """Features of one task: ``(N, 3, H, W)`` -> tuple of ``(N, C, h, w)`` maps."""
        index = self._task_index(task)
        x, grid = self._embed(inputs)
        if self.training:
            self._aux_tasks.append(task)
        return self._encode_for(x, grid, index)

    def forward_tasks(self, inputs: torch.Tensor,
                      tasks: Optional[Sequence[str]] = None) -> Dict[str, Tuple[torch.Tensor]]:
        """Features of several tasks for the same images.

        A task-agnostic backbone runs once and every task gets the same features. Otherwise
        ``'batched'``: the stem runs once, the tokens are repeated per task and one pass runs
        with a per-sample task index (``T * N`` samples); ``'sequential'``: one
        :meth:`forward` per task. Both give the same features.

        Args:
            inputs (Tensor): ``(N, 3, H, W)``.
            tasks (Sequence[str], optional): Subset of ``self.tasks``; None = all.

        Returns:
            dict[str, tuple[Tensor]]: task -> maps as :meth:`forward`.
        """
        tasks = self.tasks if tasks is None else check_task_names(tasks, 'tasks', self.tasks)
        if self.task_agnostic:
            x, grid = self._embed(inputs)
            if self.training:
                self._aux_tasks.extend(tasks)
            shared = self._encode_for(x, grid, 0)
            return {task: shared for task in tasks}
        if self.multitask_mode == 'sequential' or len(tasks) == 1:
            return {task: self.forward(inputs, task) for task in tasks}
        x, grid = self._embed(inputs)
        n = x.shape[0]
        x = x.repeat(len(tasks), *([1] * (x.dim() - 1)))
        index = torch.tensor([self._task_index(t) for t in tasks], device=x.device)
        if self.training:
            self._aux_tasks.extend(tasks)
        outs = self._encode_for(x, grid, index.repeat_interleave(n))
        return {task: tuple(out[j * n:(j + 1) * n] for out in outs)
                for j, task in enumerate(tasks)}

    # ------------------------------------------------------------------------------------------
    # auxiliary losses and routing statistics
    def routed_layers(self):
        """``(name, module)`` of every routed layer, family by family."""
        for family in self.routed_families:
            for name in family.names:
                yield name, self.get_submodule(name)

    def pop_aux_losses(self) -> Dict[str, torch.Tensor]:
        """Router losses since the last call, weighted, per layer family.

        For each family of ``routed_families`` (:class:`~mmase.models.injection.RoutedFamily`):

        - ``loss_lb{suffix}_<task>`` = ``load_balance_weight`` x the mean over the family's
          layers (and forwards) of the Switch loss of that task's router (1 when uniform);
        - ``loss_mi{suffix}`` = ``-mi_loss_weight`` x the sum over the family's layers of the
          task-expert mutual information ``I(T; E)`` in nats (Mod-Squad: summed over the MoE
          layers), estimated from all tasks' tokens since the last call.

        A family without such a loss contributes no key; empty when nothing ran in training
        mode. Clears the store.
        """
        tasks, self._aux_tasks = self._aux_tasks, []
        losses = {}
        for family in self.routed_families:
            layers = [self.get_submodule(name) for name in family.names]
            total = count = None
            for layer in layers:
                popped = layer.pop_load_balance()
                if popped is None:
                    continue
                total = popped[0] if total is None else total + popped[0]
                count = popped[1] if count is None else count + popped[1]
            if total is not None:
                for task in dict.fromkeys(tasks):
                    index = self.tasks.index(task)
                    losses[f'loss_lb{family.suffix}_{task}'] = (
                        family.load_balance_weight * total[index] / count[index])
            infos = [i for i in (layer.pop_mutual_information() for layer in layers)
                     if i is not None]
            if infos:
                losses[f'loss_mi{family.suffix}'] = -family.mi_loss_weight * torch.stack(
                    infos).sum()
        return losses

    @property
    def record_routing(self) -> bool:
        """Whether the routed layers record routing statistics (settable)."""
        return self._record_routing

    @record_routing.setter
    def record_routing(self, enabled: bool) -> None:
        self._record_routing = bool(enabled)
        for _, module in self.routed_layers():
            module.record_routing = self._record_routing

    def routing_stats(self) -> Dict[str, Dict[str, dict]]:
        """Routing statistics recorded since the last reset.

        Returns:
            dict: ``{task: {layer: dict(counts, tokens, selection_rate, ...)}}`` with ``layer``
            like ``'blocks.0.mlp'`` (experts beside the FFN, MLP expert layers) or
            ``'blocks.0.attn.qkv'`` (per-linear experts); ``counts`` ``(N - S,)`` selections
            of each sparse expert (float64 tensor, CPU), ``tokens`` routed tokens,
            ``selection_rate`` = counts / tokens (sums to top_k), and the layer's mean
            per-token quantities as floats: LoRA experts ``sparse_mass`` / ``shared_mass``
            (mean total gate weight of sparse / shared experts), FGMoE ``global_mass``,
            TaskMoE ``sparse_mass``. Empty when nothing was recorded.
        """
        result: Dict[str, Dict[str, dict]] = {}
        for name, module in self.routed_layers():
            stats = module.routing_stats()
            if stats is None:
                continue
            stats = {k: v.detach().cpu() for k, v in stats.items()}
            for index, task in enumerate(self.tasks):
                tokens = float(stats['tokens'][index])
                if tokens == 0:
                    continue
                entry = dict(counts=stats['counts'][index], tokens=int(tokens),
                             selection_rate=stats['counts'][index] / tokens)
                entry.update({k: float(v[index]) for k, v in stats.items()
                              if k not in ('counts', 'tokens')})
                result.setdefault(task, {})[name] = entry
        return result

    def reset_routing_stats(self) -> None:
        for _, module in self.routed_layers():
            module.reset_routing_stats()
