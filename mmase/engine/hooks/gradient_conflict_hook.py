"""Gradient conflict between tasks: the pairwise cosine similarity of the tasks' gradients on the
parameters they share, measured during training.

ASE (Li et al., 2025, arXiv 2510.00570) claims its adaptive shared experts "mitigate gradient
conflicts during training". This hook measures it: every ``interval`` iterations it runs one
extra forward pass on the iteration's batch and, for each task ``t``, takes the gradient ``g_t``
of the task's weighted loss (the ``'<task>.loss*'`` terms of the segmentor, router losses left
out) with respect to each **group** of shared trainable parameters:

- ``lora``: plain LoRA (router-less, single-expert adapters, e.g. on ``qkv``/``proj``);
- ``sparse_experts``: the routed experts (the ``N − S`` sparse LoRA experts; Task-MoE's expert
  MLPs; FGMoE's routed slices when one set serves every task);
- ``shared_experts``: the always-on shared LoRA experts (their ``A`` rows / ``B`` columns);
  FGMoE's shared slices when one set serves every task;
- ``routers``: routers shared by all tasks (one-row ``TaskRouter``; Task-MoE's
  ``task_embedding`` gating). A per-task router or task embedding is a row owned by one task:
  no other task's gradient reaches it, so it is left out (its cosine would be 0 by construction);
- ``other``: any other trainable backbone / neck parameter (e.g. a trainable FGMoE global
  expert); the decode heads are per task and left out;
- ``all``: every group above, concatenated.

and records ``cos(g_a, g_b) = g_a . g_b / (|g_a| |g_b|)`` for every task pair ``a < b`` and group
(NaN where a gradient is zero). In a distributed run each task's gradient is summed over the
ranks (``all_reduce``) before the cosine, so the number is that of the global batch's gradient.

The probe does not change training: the RNG state and every buffer (BN statistics) are restored
after it, gradients are taken with ``torch.autograd.grad`` (``.grad`` untouched), and the pass runs
on the unwrapped model (no DDP communication). It costs one forward and ``T`` backward passes per
recorded iteration. Routing statistics recorded by ``ExpertActivationHook`` in the same iteration
include the probe's tokens.

Output: ``<work_dir>/gradient_conflict.json`` (rank 0), read by
``tools/analysis/plot_gradient_conflict.py``; the mean cosine over pairs per group is also logged
as ``grad_cos/<group>``.
"""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS
from torch import nn

from .save_metrics_hook import write_json_atomic

#: ``format`` field of the JSON this hook writes.
GRADIENT_CONFLICT_FORMAT = 'mmase.gradient_conflict/1'
#: Parameter groups, in the order they are reported.
GROUPS = ('lora', 'sparse_experts', 'shared_experts', 'routers', 'other', 'all')

#: One piece of a group: (name, parameter, (dim, start, stop) or None for the whole tensor).
Piece = Tuple[str, nn.Parameter, Optional[Tuple[int, int, int]]]


def _moe_pieces(prefix: str, module: nn.Module) -> Dict[str, List[Piece]]:
    """Pieces of the layers that keep sparse and shared experts in one tensor."""
    from mmase.models.adapters import FGMoE, LoRAExperts, TaskMoE
    out: Dict[str, List[Piece]] = {}
    if isinstance(module, LoRAExperts):
        a, b = module.lora_A, module.lora_B
        if module.router is None and module.num_experts == 1:
            out['lora'] = [(f'{prefix}lora_A', a, None), (f'{prefix}lora_B', b, None)]
            return out
        cut = module.num_sparse * module.rank
        rows = a.shape[0]
        out['sparse_experts'] = [(f'{prefix}lora_A', a, (0, 0, cut)),
                                 (f'{prefix}lora_B', b, (1, 0, cut))]
        if cut < rows:
            out['shared_experts'] = [(f'{prefix}lora_A', a, (0, cut, rows)),
                                     (f'{prefix}lora_B', b, (1, cut, rows))]
    elif isinstance(module, TaskMoE):
        out['sparse_experts'] = [(prefix + n, getattr(module, n), None)
                                 for n in module.expert_parameter_names]
    elif isinstance(module, FGMoE):
        routed = module.num_routed * module.slice_size
        hidden = module.hidden_features
        fc1_w, fc1_b = module.expert_fc1_weight, module.expert_fc1_bias
        fc2_w, fc2_b = module.expert_fc2_weight, module.expert_fc2_bias
        if fc1_w.shape[0] == 1:  # routed slices shared by all tasks
            out['sparse_experts'] = [(f'{prefix}expert_fc1_weight', fc1_w, (1, 0, routed)),
                                     (f'{prefix}expert_fc1_bias', fc1_b, (1, 0, routed)),
                                     (f'{prefix}expert_fc2_weight', fc2_w, (2, 0, routed))]
            if fc1_w.shape[1] == hidden and routed < hidden:  # shared slices in the same set
                out['shared_experts'] = [
                    (f'{prefix}expert_fc1_weight', fc1_w, (1, routed, hidden)),
                    (f'{prefix}expert_fc1_bias', fc1_b, (1, routed, hidden)),
                    (f'{prefix}expert_fc2_weight', fc2_w, (2, routed, hidden))]
        if fc2_b.shape[0] == 1:
            out['other'] = [(f'{prefix}expert_fc2_bias', fc2_b, None)]
    return out


def shared_parameter_groups(model: nn.Module) -> Dict[str, List[Piece]]:
    """The trainable parameters every task's gradient reaches, by group (see module).

    Args:
        model (nn.Module): A ``MultiTaskEncoderDecoder`` (unwrapped).

    Returns:
        dict: group -> pieces (``GROUPS`` order, ``'all'`` excluded, empty groups dropped).
    """
    from mmase.models.adapters import FGMoE, LoRAExperts, TaskMoE
    from mmase.models.adapters.routers import TaskRouter
    groups: Dict[str, List[Piece]] = {g: [] for g in GROUPS[:-1]}
    seen = set()
    owners = [m for m in (getattr(model, 'backbone', None), getattr(model, 'neck', None))
              if isinstance(m, nn.Module)]
    for owner_name, owner in zip(('backbone', 'neck'), owners):
        for name, module in owner.named_modules():
            prefix = f'{owner_name}.{name}.' if name else f'{owner_name}.'
            if isinstance(module, (LoRAExperts, TaskMoE, FGMoE)):
                for group, pieces in _moe_pieces(prefix, module).items():
                    groups[group] += [p for p in pieces if p[1].requires_grad]
                # every other parameter of an expert layer is either its router (below) or
                # owned by one task (per-task slices, task embeddings) or frozen
                for pname, param in module.named_parameters(recurse=False):
                    seen.add(id(param))
                if isinstance(module, TaskMoE) and module.task_embedding is not None:
                    seen.add(id(module.task_embedding))
            elif isinstance(module, TaskRouter):
                if module.num_tasks == 1 and module.weight.requires_grad:
                    groups['routers'].append((f'{prefix}weight', module.weight, None))
                seen.add(id(module.weight))
        embed = getattr(owner, 'task_embed', None)
        if isinstance(embed, nn.Parameter):
            seen.add(id(embed))  # one row per task
        for pname, param in owner.named_parameters():
            if param.requires_grad and id(param) not in seen:
                groups['other'].append((f'{owner_name}.{pname}', param, None))
                seen.add(id(param))
    return {g: pieces for g, pieces in groups.items() if pieces}


def _take(grad: Optional[torch.Tensor], param: nn.Parameter,
          cut: Optional[Tuple[int, int, int]]) -> torch.Tensor:
    """The flat (float64) gradient of one piece; zeros where the loss did not reach it."""
    if grad is None:
        grad = torch.zeros_like(param)
    if cut is not None:
        grad = grad.narrow(cut[0], cut[1], cut[2] - cut[1])
    return grad.reshape(-1).double()


def task_gradients(task_losses: Dict[str, torch.Tensor],
                   groups: Dict[str, List[Piece]]) -> Dict[str, torch.Tensor]:
    """Per group, the stacked flat gradients of each task's loss.

    Args:
        task_losses (dict): task -> scalar loss (tasks in order).
        groups (dict): group -> pieces, as :func:`shared_parameter_groups` returns them.

    Returns:
        dict: group -> ``(T, D_group)`` float64 gradients, ``'all'`` -> ``(T, Σ D)``.
    """
    params = list({id(p): p for pieces in groups.values() for _, p, _ in pieces}.values())
    index = {id(p): i for i, p in enumerate(params)}
    rows: Dict[str, List[torch.Tensor]] = {g: [] for g in groups}
    for loss in task_losses.values():
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        for group, pieces in groups.items():
            rows[group].append(torch.cat([_take(grads[index[id(p)]], p, cut)
                                          for _, p, cut in pieces]))
    out = {g: torch.stack(r) for g, r in rows.items()}
    if out:
        out['all'] = torch.cat(list(out.values()), dim=1)
    return out


def pairwise_cosine(grads: torch.Tensor, tasks: Sequence[str]) -> Dict[str, float]:
    """``{'a|b': cos(g_a, g_b)}`` for every pair ``a < b`` of ``grads (T, D)`` (NaN where a
    gradient is zero)."""
    norms = grads.norm(dim=1)
    out = {}
    for i in range(len(tasks)):
        for j in range(i + 1, len(tasks)):
            denom = float(norms[i] * norms[j])
            out[f'{tasks[i]}|{tasks[j]}'] = (float(grads[i] @ grads[j]) / denom
                                             if denom > 0 else math.nan)
    return out


@HOOKS.register_module()
class GradientConflictHook(Hook):
    """Log the pairwise cosine similarity of the tasks' gradients on shared parameters.

    Args:
        interval (int): Record at iterations 0, ``interval``, ``2 interval``, ... (0-based
            iteration about to be trained). Default: 50.
        out_file (str): JSON file in the work dir. Default: ``'gradient_conflict.json'``.
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 50, out_file: str = 'gradient_conflict.json'):
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f'GradientConflictHook.interval={interval!r} must be an int >= 1')
        self.interval = interval
        self.out_file = out_file
        self._record: dict = {}

    def before_train(self, runner) -> None:
        model = self._model(runner)
        groups = shared_parameter_groups(model)
        if not groups:
            raise ValueError('GradientConflictHook: the model has no trainable parameter shared '
                             'by the tasks (model.backbone and model.neck are frozen or '
                             'per task)')
        self._record = dict(format=GRADIENT_CONFLICT_FORMAT, tasks=list(model.tasks),
                            world_size=get_world_size(),
                            groups={g: sum(_numel(p, c) for _, p, c in pieces)
                                    for g, pieces in groups.items()},
                            iters={})
        path = osp.join(runner.work_dir, self.out_file)
        if runner.iter > 0 and osp.isfile(path):  # a resumed run keeps what it recorded
            with open(path) as f:
                previous = json.load(f)
            if previous.get('format') == GRADIENT_CONFLICT_FORMAT:
                self._record['iters'] = {k: v for k, v in previous.get('iters', {}).items()
                                         if int(k) < runner.iter}

    @staticmethod
    def _model(runner) -> nn.Module:
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if runner.iter % self.interval or data_batch is None:
            return
        record = self.measure(self._model(runner), data_batch)
        self._record['iters'][str(runner.iter)] = record
        for group, pairs in record.items():
            values = [v for v in pairs.values() if not math.isnan(v)]
            if values:
                runner.message_hub.update_scalar(f'train/grad_cos/{group}',
                                                 sum(values) / len(values))
        if is_main_process():
            os.makedirs(runner.work_dir, exist_ok=True)
            write_json_atomic(osp.join(runner.work_dir, self.out_file), self._record)

    @staticmethod
    def measure(model: nn.Module, data_batch) -> Dict[str, Dict[str, float]]:
        """One probe: group -> ``{'a|b': cosine}``, the model's state left as it was."""
        buffers = {name: buf.detach().clone() for name, buf in model.named_buffers()}
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            data = model.data_preprocessor(data_batch, True)
            losses = model(**data, mode='loss')
            task_losses = {}
            for task in model.tasks:
                terms = [v for k, v in losses.items()
                         if k.startswith(f'{task}.') and 'loss' in k.split('.', 1)[1]
                         and isinstance(v, torch.Tensor) and v.requires_grad]
                if terms:
                    task_losses[task] = sum(terms)
            grads = task_gradients(task_losses, shared_parameter_groups(model))
        with torch.no_grad():
            for name, buf in model.named_buffers():
                buf.copy_(buffers[name])
        tasks = list(task_losses)
        out = {}
        for group, stacked in grads.items():
            if get_world_size() > 1:
                all_reduce(stacked, op='sum')
            out[group] = pairwise_cosine(stacked, tasks)
        return out


def _numel(param: nn.Parameter, cut: Optional[Tuple[int, int, int]]) -> int:
    if cut is None:
        return param.numel()
    return param.numel() // param.shape[cut[0]] * (cut[2] - cut[1])
