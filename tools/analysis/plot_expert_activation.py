"""Plot the expert activation recorded during training by ``ExpertActivationHook`` (ASE, Li et al.,
2025, arXiv 2510.00570, Fig. 4): per task, a heatmap of each expert's activation (x: experts,
the shared ones marked; y: routed layer) with one panel per chosen epoch and one colour bar, and
the shared experts' gate mass over training.

Cell values (all in [0, 1]):

- sparse expert ``i``: its selection rate, the fraction of the task's tokens in that layer that
  selected it (``counts / tokens``; a layer's sparse rates sum to ``top_k``);
- shared expert: its mean gate weight per token (``shared_mass / num_shared``). Shared experts
  are on for every token, so their selection rate is always 1 and says nothing; their gate
  weight is what shrinks when the sparse experts take over (1 for each under ``'fixed'`` gating).

Outputs in ``--out`` (default: the JSON's directory), in ``--format`` png (default), pdf or svg
at ``--dpi``: ``expert_activation_<task>.<format>`` per task and ``shared_gate_mass.<format>`` (one panel per task: each
layer's shared gate mass per token against the epoch, their mean in black).

Example::

    python tools/analysis/plot_expert_activation.py work_dirs/ase_vit-b16_16-3-1-4_40e \\
        --epochs 1 3 40 --tasks semseg
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a clone
from mmase.engine.hooks.expert_activation_hook import EXPERT_ACTIVATION_FORMAT  # noqa: E402

DEFAULT_FILE = 'expert_activation.json'
DPI = 100
SHARED_COLOUR = 'tab:red'


def load_record(path: str) -> Tuple[str, dict]:
    """Read the hook's JSON (a file, or a work dir holding ``expert_activation.json``); returns
    ``(json_path, record)``."""
    json_path = osp.join(path, DEFAULT_FILE) if osp.isdir(path) else path
    if not osp.isfile(json_path):
        raise FileNotFoundError(f'{json_path!r}: no such file (ExpertActivationHook writes '
                                f'{DEFAULT_FILE} in the work dir of a run that has it in '
                                f'custom_hooks)')
    try:
        with open(json_path) as f:
            record = json.load(f)
    except ValueError as error:
        raise ValueError(f'{json_path}: not a JSON file ({error})') from None
    if not isinstance(record, dict) or record.get('format') != EXPERT_ACTIVATION_FORMAT:
        raise ValueError(f'{json_path}: not an ExpertActivationHook record (format '
                         f'{EXPERT_ACTIVATION_FORMAT!r})')
    if not record.get('epochs'):
        raise ValueError(f'{json_path}: no epoch recorded')
    return json_path, record


def recorded_epochs(record: dict) -> List[int]:
    return sorted(int(e) for e in record['epochs'])


def choose_epochs(record: dict, epochs: Optional[Sequence[int]], source: str) -> List[int]:
    """The epochs to draw: ``epochs`` (each must be recorded), else the first, middle and last
    recorded ones."""
    available = recorded_epochs(record)
    if epochs:
        missing = [e for e in epochs if e not in available]
        if missing:
            raise ValueError(f'--epochs {" ".join(map(str, missing))}: not recorded in {source} '
                             f'(recorded epochs: {", ".join(map(str, available))})')
        return list(epochs)
    return sorted({available[0], available[len(available) // 2], available[-1]})


def choose_tasks(record: dict, tasks: Optional[Sequence[str]], source: str) -> List[str]:
    if not tasks:
        return list(record['tasks'])
    missing = [t for t in tasks if t not in record['tasks']]
    if missing:
        raise ValueError(f'--tasks {" ".join(missing)}: not recorded in {source} (tasks: '
                         f'{", ".join(record["tasks"])})')
    return list(tasks)


def activation_matrix(record: dict, task: str, epoch: int) -> Tuple[np.ndarray, List[str], int]:
    """Heatmap values of ``task`` at ``epoch``.

    Returns:
        tuple: ``(values, layers, max_sparse)``: ``values`` ``(L, max_sparse + max_shared)``
        float (NaN where a layer has fewer experts), columns ``0 .. max_sparse-1`` the sparse
        experts' selection rates, then the shared experts' mean gate weights; ``layers`` the
        row names.
    """
    layers = list(record['layers'])
    max_sparse = max(meta['num_sparse'] for meta in record['layers'].values())
    max_shared = max(meta['num_shared'] for meta in record['layers'].values())
    values = np.full((len(layers), max_sparse + max_shared), np.nan)
    stats = record['epochs'][str(epoch)].get(task, {})
    for row, layer in enumerate(layers):
        entry = stats.get(layer)
        if entry is None:
            continue
        rates = np.asarray(entry['counts'], dtype=np.float64) / entry['tokens']
        values[row, :len(rates)] = rates
        shared = record['layers'][layer]['num_shared']
        if shared:
            values[row, max_sparse:max_sparse + shared] = entry['shared_mass'] / shared
    return values, layers, max_sparse


def plot_heatmaps(record: dict, task: str, epochs: Sequence[int], path: str,
                  dpi: int = DPI) -> None:
    """One panel per epoch, experts on x (shared marked in red), layers on y, one colour bar."""
    panels = [activation_matrix(record, task, epoch) for epoch in epochs]
    vmax = max(1e-6, max(float(np.nanmax(v)) if np.isfinite(v).any() else 0 for v, _, _ in panels))
    values, layers, max_sparse = panels[0]
    num_cols = values.shape[1]
    width = (1.2 + 0.28 * num_cols) * len(epochs) + 1.8
    height = 1.6 + 0.35 * len(layers)
    fig, axes = plt.subplots(1, len(epochs), figsize=(width, height), dpi=dpi, squeeze=False,
                             sharey=True)
    image = None
    for ax, epoch, (values, layers, max_sparse) in zip(axes[0], epochs, panels):
        image = ax.imshow(np.ma.masked_invalid(values), aspect='auto', cmap='viridis', vmin=0,
                          vmax=vmax, interpolation='nearest')
        labels = [str(i) for i in range(max_sparse)] + \
            [f'S{j + 1}' for j in range(num_cols - max_sparse)]
        ax.set_xticks(range(num_cols))
        ax.set_xticklabels(labels, fontsize=7)
        for tick, label in zip(ax.get_xticklabels(), labels):
            if label.startswith('S'):
                tick.set_color(SHARED_COLOUR)
                tick.set_fontweight('bold')
        if num_cols > max_sparse:
            ax.axvline(max_sparse - 0.5, color='white', linewidth=2)
        ax.set_title(f'epoch {epoch}')
        ax.set_xlabel('expert (S: shared)')
    axes[0][0].set_yticks(range(len(layers)))
    axes[0][0].set_yticklabels(layers, fontsize=8)
    axes[0][0].set_ylabel('layer')
    colorbar = fig.colorbar(image, ax=list(axes[0]), fraction=0.04, pad=0.02)
    colorbar.set_label('sparse: fraction of tokens selecting it\nshared: mean gate weight',
                       fontsize=8)
    fig.suptitle(f'{task}: expert activation per layer (ASE Fig. 4)', y=1 + 0.35 / height)
    fig.savefig(path, bbox_inches='tight', dpi=dpi)
    plt.close(fig)


def shared_mass_series(record: dict, task: str) -> Tuple[List[int], Dict[str, List[float]]]:
    """Epochs and, per layer with shared experts, the shared gate mass per token at each epoch
    (NaN where not recorded)."""
    epochs = recorded_epochs(record)
    series = {}
    for layer, meta in record['layers'].items():
        if not meta['num_shared']:
            continue
        series[layer] = [record['epochs'][str(e)].get(task, {}).get(layer, {}).get(
            'shared_mass', float('nan')) for e in epochs]
    return epochs, series


def plot_shared_mass(record: dict, tasks: Sequence[str], path: str, dpi: int = DPI) -> bool:
    """One panel per task: each layer's shared gate mass against the epoch, the mean in black.
    Returns False (and writes nothing) when no layer has shared experts."""
    if not any(meta['num_shared'] for meta in record['layers'].values()):
        return False
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks) + 1.5, 3.2), dpi=dpi,
                             squeeze=False, sharey=True)
    plotted = []
    colours = plt.get_cmap('viridis')
    for ax, task in zip(axes[0], tasks):
        epochs, series = shared_mass_series(record, task)
        for index, (layer, values) in enumerate(series.items()):
            ax.plot(epochs, values, marker='.', linewidth=1,
                    color=colours(index / max(1, len(series) - 1)), label=layer)
        mean = np.nanmean(np.array(list(series.values())), axis=0)
        plotted += [v for row in series.values() for v in row if np.isfinite(v)]
        ax.plot(epochs, mean, color='black', linewidth=2.5, label='mean over layers')
        ax.set_title(task)
        ax.set_xlabel('epoch')
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel('shared experts: gate mass per token')
    if plotted:  # fitted to the data (ours: 10 % margin, at least 0.01)
        low, high = min(plotted), max(plotted)
        pad = max(0.1 * (high - low), 0.01)
        axes[0][0].set_ylim(max(0.0, low - pad), high + pad)
    epochs_all = recorded_epochs(record)
    axes[0][0].set_xlim(min(epochs_all) - 0.5, max(epochs_all) + 0.5)
    axes[0][-1].legend(fontsize=7, loc='center left', bbox_to_anchor=(1.02, 0.5))
    fig.suptitle('shared experts\' gate mass over training', y=1.04)
    fig.savefig(path, bbox_inches='tight', dpi=dpi)
    plt.close(fig)
    return True


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Fig. 4 style expert-activation heatmaps and the shared gate mass over '
        'training, from the JSON of ExpertActivationHook')
    parser.add_argument('path', help=f'{DEFAULT_FILE} or the work dir holding it')
    parser.add_argument('--epochs', type=int, nargs='+',
                        help='epochs to draw, one panel each (default: first, middle, last)')
    parser.add_argument('--tasks', nargs='+', help='tasks to draw (default: all recorded)')
    parser.add_argument('--out', help='output directory (default: the JSON\'s directory)')
    parser.add_argument('--dpi', type=int, default=DPI, help=f'resolution (default {DPI})')
    parser.add_argument('--format', choices=['png', 'pdf', 'svg'], default='png',
                        help='figure file format (default png)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> List[str]:
    args = parse_args(argv)
    json_path, record = load_record(args.path)
    epochs = choose_epochs(record, args.epochs, json_path)
    tasks = choose_tasks(record, args.tasks, json_path)
    out = args.out or osp.dirname(osp.abspath(json_path))
    os.makedirs(out, exist_ok=True)
    written = []
    for task in tasks:
        path = osp.join(out, f'expert_activation_{task}.{args.format}')
        plot_heatmaps(record, task, epochs, path, args.dpi)
        written.append(path)
    path = osp.join(out, f'shared_gate_mass.{args.format}')
    if plot_shared_mass(record, tasks, path, args.dpi):
        written.append(path)
    else:
        print(f'no layer has shared experts: shared_gate_mass.{args.format} not written')
    for task in tasks:
        _, series = shared_mass_series(record, task)
        if series:
            first, last = (np.nanmean([v[i] for v in series.values()]) for i in (0, -1))
            print(f'{task}: shared gate mass per token (mean over layers) {first:.3f} at epoch '
                  f'{recorded_epochs(record)[0]} -> {last:.3f} at epoch '
                  f'{recorded_epochs(record)[-1]}')
    print(f'epochs {", ".join(map(str, epochs))}; wrote {", ".join(written)}')
    return written


if __name__ == '__main__':
    try:
        main()
    except (ValueError, KeyError, FileNotFoundError) as error:
        sys.exit(f'plot_expert_activation.py: error: {error}')
