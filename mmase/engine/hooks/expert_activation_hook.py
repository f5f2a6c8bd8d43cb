"""Expert activation over training (ASE Fig. 4): per task, layer and epoch, how often each expert
is used and how much gate mass the shared experts take."""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmengine.dist import all_gather_object, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import IterBasedTrainLoop
from mmseg.registry import HOOKS

from mmase.models.backbones import MultiTaskBackbone
from .save_metrics_hook import write_json_atomic

#: ``format`` field of the JSON this hook writes (read by tools/analysis/plot_expert_activation.py).
EXPERT_ACTIVATION_FORMAT = 'mmase.expert_activation/1'
#: Per-layer statistics that are counts (summed over ranks); every other number is a per-token
#: mean (averaged over ranks weighted by their tokens).
_COUNT_KEYS = ('counts', 'tokens')
_DERIVED_KEYS = ('selection_rate', )


def _plain(entry: dict) -> dict:
    """One layer's ``routing_stats()`` entry as JSON-ready numbers (no derived keys)."""
    out = dict(counts=[float(c) for c in entry['counts'].tolist()], tokens=int(entry['tokens']))
    for key, value in entry.items():
        if key not in _COUNT_KEYS + _DERIVED_KEYS:
            out[key] = float(value)
    return out


def merge_rank_stats(per_rank: Sequence[Dict[str, Dict[str, dict]]]) -> Dict[str, Dict[str, dict]]:
    """Merge the plain statistics of several ranks: counts and tokens summed, per-token means
    (``sparse_mass``, ``shared_mass``, ...) averaged weighted by each rank's tokens.

    Args:
        per_rank (Sequence[dict]): ``{task: {layer: dict(counts=[...], tokens, <mean>...)}}``
            per rank (a rank may lack a task or layer it routed no token of).

    Returns:
        dict: The same structure over all ranks, with ``selection_rate`` = counts / tokens.
    """
    merged: Dict[str, Dict[str, dict]] = {}
    for stats in per_rank:
        for task, layers in stats.items():
            for layer, entry in layers.items():
                into = merged.setdefault(task, {}).get(layer)
                if into is None:
                    merged[task][layer] = dict(
                        entry, counts=list(entry['counts']),
                        **{k: v * entry['tokens'] for k, v in entry.items()
                           if k not in _COUNT_KEYS})
                    continue
                if len(into['counts']) != len(entry['counts']):
                    raise ValueError(f'ExpertActivationHook: ranks disagree on the number of '
                                     f'experts of {layer!r} ({len(into["counts"])} vs '
                                     f'{len(entry["counts"])})')
                into['counts'] = [a + b for a, b in zip(into['counts'], entry['counts'])]
                into['tokens'] += entry['tokens']
                for key, value in entry.items():
                    if key not in _COUNT_KEYS:
                        into[key] = into.get(key, 0.0) + value * entry['tokens']
    for layers in merged.values():
        for entry in layers.values():
            tokens = entry['tokens']
            for key in list(entry):
                if key not in _COUNT_KEYS:
                    entry[key] = entry[key] / tokens
            entry['selection_rate'] = [c / tokens for c in entry['counts']]
    return merged


@HOOKS.register_module()
class ExpertActivationHook(Hook):
    """Record each expert's activation frequency and the shared experts' gate mass, per task,
    routed layer and training epoch (the STL-to-MTL transition of ASE, Li et al., 2025, arXiv
    2510.00570, Fig. 4).

    During each recorded training epoch the backbone's routing statistics are switched on
    (``backbone.record_routing = True``, from a reset); at the epoch's end they are read
    (``backbone.routing_stats()``), switched back off (validation is not recorded), summed over
    the ranks of a distributed run (one ``all_gather_object`` of a few numbers per layer) and
    written by rank 0 to ``<work_dir>/<out_file>``, rewritten after every epoch::

        {"format": "mmase.expert_activation/1", "world_size": 1,
         "tasks": ["semseg", ...],
         "layers": {"blocks.0.mlp": {"num_sparse": 15, "num_shared": 1}, ...},
         "epochs": {"1": {"semseg": {"blocks.0.mlp": {
             "counts": [...],          # (N - S,) tokens that selected each sparse expert
             "tokens": 100352,         # routed tokens of the task in the layer
             "selection_rate": [...],  # counts / tokens, in [0, 1], sums to top_k
             "sparse_mass": 0.81,      # mean total gate weight of the sparse experts per token
             "shared_mass": 0.19}}}}}  # mean total gate weight of the shared experts per token

    Epochs are 1-based, as mmengine's logs count them. ``num_shared`` is read from each routed
    module (``backbone.get_submodule(layer).num_shared``; 0 when it has none), the number of
    sparse experts from ``len(counts)``; nothing assumes layer names. On resume the epochs
    already trained are kept from the file, later ones dropped.

    Only an epoch-based loop (``train_cfg.type='EpochBasedTrainLoop'``) has epochs to record.
    Not configured, the hook costs nothing; configured, a recorded epoch costs the routers'
    statistics (a few reductions per layer and step).

    Args:
        out_file (str): File name in the work dir. Default: 'expert_activation.json'.
        epochs (Sequence[int], optional): The (1-based) epochs to record, e.g. ``(1, 3, 40)``
            as in Fig. 4. Default: None (every epoch).
    """

    priority = 'NORMAL'

    def __init__(self, out_file: str = 'expert_activation.json',
                 epochs: Optional[Sequence[int]] = None) -> None:
        if not isinstance(out_file, str) or not out_file or osp.basename(out_file) != out_file:
            raise ValueError(f'ExpertActivationHook.out_file must be a file name (no directory), '
                             f'got {out_file!r}')
        if epochs is not None:
            epochs = list(epochs)
            if not epochs or any(isinstance(e, bool) or not isinstance(e, int) or e < 1
                                 for e in epochs):
                raise ValueError(f'ExpertActivationHook.epochs must be 1-based epoch numbers, got '
                                 f'{epochs!r}')
        self.out_file = out_file
        self.epochs = None if epochs is None else sorted(set(epochs))
        self._record: Optional[dict] = None
        self._recording = False

    # ------------------------------------------------------------------------------ helpers
    @staticmethod
    def _backbone(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        backbone = getattr(model, 'backbone', None)
        if not isinstance(backbone, MultiTaskBackbone):
            backbone_type = runner.cfg.get('model', {}).get('backbone', {}).get('type')
            raise ValueError(f'ExpertActivationHook (custom_hooks) needs a multi-task backbone '
                             f'(routing statistics); model.backbone.type={backbone_type!r} is '
                             f'not one')
        return backbone

    def _path(self, runner) -> str:
        return osp.join(runner.work_dir, self.out_file)

    def _wanted(self, epoch: int) -> bool:
        return self.epochs is None or epoch in self.epochs

    # ------------------------------------------------------------------------------ hooks
    def before_train(self, runner) -> None:
        """Check the loop and the backbone; keep the epochs a resumed run already trained."""
        loop = runner.train_loop
        # IterBasedTrainLoop has a _max_epochs of 1 "for compatibility": not an epoch clock
        if isinstance(loop, IterBasedTrainLoop) or not getattr(loop, '_max_epochs', None):
            raise ValueError(f"ExpertActivationHook records per epoch: train_cfg.type="
                             f"{runner.cfg.get('train_cfg', {}).get('type')!r} has no epochs; "
                             f"use 'EpochBasedTrainLoop'")
        self._backbone(runner)
        self._record = dict(format=EXPERT_ACTIVATION_FORMAT, world_size=get_world_size(),
                            tasks=[], layers={}, epochs={})
        path = self._path(runner)
        if runner.epoch > 0 and osp.isfile(path):
            with open(path) as f:
                previous = json.load(f)
            if previous.get('format') == EXPERT_ACTIVATION_FORMAT:
                self._record.update(tasks=previous.get('tasks', []),
                                    layers=previous.get('layers', {}))
                self._record['epochs'] = {k: v for k, v in previous.get('epochs', {}).items()
                                          if int(k) <= runner.epoch}

    def before_train_epoch(self, runner) -> None:
        """Reset and switch on the routing statistics of a recorded epoch."""
        if not self._wanted(runner.epoch + 1):
            return
        backbone = self._backbone(runner)
        backbone.reset_routing_stats()
        backbone.record_routing = True
        self._recording = True

    def after_train_epoch(self, runner) -> None:
        """Read, switch off, gather over ranks and (rank 0) write the epoch's statistics."""
        if not self._recording:
            return
        self._recording = False
        backbone = self._backbone(runner)
        stats = backbone.routing_stats()
        backbone.record_routing = False
        backbone.reset_routing_stats()
        plain = {task: {layer: _plain(entry) for layer, entry in layers.items()}
                 for task, layers in stats.items()}
        per_rank: List[dict] = all_gather_object(plain) if get_world_size() > 1 else [plain]
        merged = merge_rank_stats(per_rank)
        if not merged:
            raise ValueError('ExpertActivationHook recorded no routed token in epoch '
                             f'{runner.epoch + 1}: model.backbone has no routed layer (e.g. '
                             f'adapter with num_experts > 1, or mlp_moe)')
        epoch = runner.epoch + 1
        record = self._record
        for task in merged:
            if task not in record['tasks']:
                record['tasks'].append(task)
            for layer, entry in merged[task].items():
                if layer not in record['layers']:
                    module = backbone.get_submodule(layer)
                    record['layers'][layer] = dict(
                        num_sparse=len(entry['counts']),
                        num_shared=int(getattr(module, 'num_shared', 0) or 0))
        record['epochs'][str(epoch)] = merged
        if is_main_process():
            os.makedirs(runner.work_dir, exist_ok=True)
            write_json_atomic(self._path(runner), record)
