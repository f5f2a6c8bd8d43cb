"""Figures of an expert-usage summary (:func:`mmase.analysis.expert_usage.summarize_routing`):
``selection_frequency`` (one task x expert heatmap per layer, a grid of ViT blocks x adapted
linears), ``shared_gate_mass`` (gate mass per layer, a line per task) and ``task_similarity``
(the task x task routing-similarity matrix). Drawn with matplotlib's Agg canvas: no display, no
global backend change. Sizes are in pixels at :data:`DPI`.
"""
import math
import os.path as osp
import re
from typing import Dict, List, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Gate masses drawn in ``shared_gate_mass.png``, with their axis labels.
MASS_PLOTS = (('shared_mass', 'shared experts: gate mass per token'),
              ('global_mass', 'global expert: mean gate g'))

#: Figure geometry in pixels (at :data:`DPI`); see the ``plot_*`` functions for the formulas.
DPI = 100
HEATMAP_PANEL_WIDTH = 280
HEATMAP_PANEL_HEIGHT_BASE = 100  # plus HEATMAP_ROW_PER_TASK per task
HEATMAP_ROW_PER_TASK = 30
HEATMAP_MARGIN_WIDTH = 220  # task labels on the left, colour bar on the right
HEATMAP_MARGIN_HEIGHT = 80  # figure title
MASS_PANEL_HEIGHT = 260
MASS_MARGIN_HEIGHT = 200  # rotated layer names under the last panel
MASS_MIN_WIDTH = 640
MASS_WIDTH_PER_LAYER = 28
MASS_MARGIN_WIDTH = 160
SIMILARITY_CELL = 80
SIMILARITY_MARGIN_WIDTH = 200
SIMILARITY_MARGIN_HEIGHT = 140

_BLOCK_LAYER = re.compile(r'^(?P<prefix>(?:.*\.)?blocks\.)(?P<block>\d+)\.(?P<path>.+)$')


def _new_figure(width: int, height: int) -> Figure:
    """An Agg-backed figure of ``width`` x ``height`` pixels at :data:`DPI`."""
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout='constrained')
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str, dpi: int = DPI) -> Tuple[int, int]:
    """Write ``fig`` (format from the suffix of ``path``: png, pdf or svg) at ``dpi``; returns
    the raster size in pixels at that dpi."""
    fmt = osp.splitext(path)[1][1:].lower() or 'png'
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f'{path}: figure format must be one of {FIGURE_FORMATS}')
    fig.savefig(path, dpi=dpi, format=fmt)
    return int(round(fig.get_figwidth() * dpi)), int(round(fig.get_figheight() * dpi))


#: Formats the figures can be written in (``--format``).
FIGURE_FORMATS = ('png', 'pdf', 'svg')


def layer_grid(names: Sequence[str]) -> Tuple[List[str], List[str], Dict[str, Tuple[int, int]]]:
    """Arrange layers in a grid: ViT blocks as rows and the adapted linears as columns when
    every name is ``...blocks.<i>.<path>``, else rows of 4 in order.

    Returns:
        tuple: ``(row labels, column labels, name -> (row, column))``.
    """
    matches = [_BLOCK_LAYER.match(n) for n in names]
    if names and all(matches):
        rows = list(dict.fromkeys(m['prefix'] + m['block'] for m in matches))
        cols = list(dict.fromkeys(m['path'] for m in matches))
        cells = {n: (rows.index(m['prefix'] + m['block']), cols.index(m['path']))
                 for n, m in zip(names, matches)}
        return rows, cols, cells
    ncols = min(4, max(len(names), 1))
    nrows = max(1, math.ceil(len(names) / ncols))
    cells = {n: divmod(i, ncols) for i, n in enumerate(names)}
    return [''] * nrows, [''] * ncols, cells


def plot_selection_frequency(summary: dict, path: str, dpi: int = DPI) -> Tuple[int, int]:
    """Draw one task x expert heatmap of selection frequency per routed layer, on a grid.

    Size in pixels: width ``HEATMAP_MARGIN_WIDTH + columns * HEATMAP_PANEL_WIDTH``, height
    ``HEATMAP_MARGIN_HEIGHT + rows * (HEATMAP_PANEL_HEIGHT_BASE + HEATMAP_ROW_PER_TASK * T)``
    (rows, columns from :func:`layer_grid`). One colour scale for all panels.

    Returns:
        tuple[int, int]: ``(width, height)`` of the PNG in pixels.
    """
    tasks, layers = summary['tasks'], summary['layers']
    rows, cols, cells = layer_grid(list(layers))
    width = HEATMAP_MARGIN_WIDTH + len(cols) * HEATMAP_PANEL_WIDTH
    height = HEATMAP_MARGIN_HEIGHT + len(rows) * (HEATMAP_PANEL_HEIGHT_BASE
                                                  + HEATMAP_ROW_PER_TASK * len(tasks))
    fig = _new_figure(width, height)
    axes = fig.subplots(len(rows), len(cols), squeeze=False)
    vmax = max([max(e['selection_frequency']) for layer in layers.values()
                for e in layer['tasks'].values()] + [1e-12])
    image = None
    for name, (r, c) in cells.items():
        layer, ax = layers[name], axes[r][c]
        data = np.full((len(tasks), layer['routed_experts']), np.nan)
        for i, task in enumerate(tasks):
            if task in layer['tasks']:
                data[i] = layer['tasks'][task]['selection_frequency']
        image = ax.imshow(data, vmin=0.0, vmax=vmax, cmap='viridis', aspect='auto',
                          interpolation='nearest')
        ax.set_title(name, fontsize=8)
        ax.set_yticks(range(len(tasks)))
        ax.set_yticklabels(tasks if c == 0 else [], fontsize=7)
        if c == 0:
            ax.set_ylabel('task', fontsize=7)
        step = max(1, math.ceil(layer['routed_experts'] / 8))
        ax.set_xticks(range(0, layer['routed_experts'], step))
        ax.tick_params(axis='x', labelsize=6)
        if r == len(rows) - 1:
            ax.set_xlabel('expert', fontsize=7)
    used = set(cells.values())
    for r in range(len(rows)):
        for c in range(len(cols)):
            if (r, c) not in used:
                axes[r][c].set_axis_off()
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.9,
                     label='selection frequency (fraction of tokens)')
    fig.suptitle(f"Expert selection frequency per task ({summary['num_samples']} images)",
                 fontsize=10)
    return _save(fig, path, dpi)


def plot_shared_gate_mass(summary: dict, path: str, dpi: int = DPI) -> Tuple[int, int]:
    """Draw the shared experts' (and FGMoE's global expert's) gate mass per layer, a line per
    task; one panel per kind of mass recorded (:data:`MASS_PLOTS`).

    Size in pixels: width ``max(MASS_MIN_WIDTH, MASS_MARGIN_WIDTH + MASS_WIDTH_PER_LAYER * L)``,
    height ``MASS_MARGIN_HEIGHT + MASS_PANEL_HEIGHT * panels`` (at least one panel; a layer set
    without shared or global experts gets one panel that says so).

    Returns:
        tuple[int, int]: ``(width, height)`` of the PNG in pixels.
    """
    tasks, layers = summary['tasks'], summary['layers']
    names = list(layers)
    kinds = [(key, label) for key, label in MASS_PLOTS
             if any(key in e for layer in layers.values() for e in layer['tasks'].values())]
    width = max(MASS_MIN_WIDTH, MASS_MARGIN_WIDTH + MASS_WIDTH_PER_LAYER * len(names))
    height = MASS_MARGIN_HEIGHT + MASS_PANEL_HEIGHT * max(1, len(kinds))
    fig = _new_figure(width, height)
    axes = fig.subplots(max(1, len(kinds)), 1, squeeze=False)[:, 0]
    if not kinds:
        axes[0].set_axis_off()
        axes[0].text(0.5, 0.5, 'no routed layer has shared or global experts',
                     ha='center', va='center')
    x = np.arange(len(names))
    for ax, (key, label) in zip(axes, kinds):
        values = []
        for task in tasks:
            y = np.array([layers[n]['tasks'].get(task, {}).get(key, np.nan) for n in names],
                         dtype=np.float64)
            ax.plot(x, y, marker='o', markersize=3, linewidth=1, label=task)
            values += list(y[np.isfinite(y)])
        if values:  # fitted to the data (ours: 10 % margin, at least 0.01)
            low, high = min(values), max(values)
            pad = max(0.1 * (high - low), 0.01)
            ax.set_ylim(max(0.0, low - pad), high + pad)
        ax.set_ylabel(label, fontsize=8)
        ax.set_xticks(x)
        ax.set_xticklabels(names if ax is axes[-1] else [], rotation=90, fontsize=6)
        if ax is axes[-1]:
            ax.set_xlabel('routed layer', fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=min(len(tasks), 5))
    fig.suptitle('Gate mass of the shared / global experts per layer and task', fontsize=10)
    return _save(fig, path, dpi)


def plot_task_similarity(summary: dict, path: str, dpi: int = DPI) -> Tuple[int, int]:
    """Draw the task x task routing similarity matrix with its values.

    Size in pixels: ``(SIMILARITY_MARGIN_WIDTH + SIMILARITY_CELL * T,
    SIMILARITY_MARGIN_HEIGHT + SIMILARITY_CELL * T)``.

    Returns:
        tuple[int, int]: ``(width, height)`` of the PNG in pixels.
    """
    tasks = summary['tasks']
    similarity = summary['similarity']
    width = SIMILARITY_MARGIN_WIDTH + SIMILARITY_CELL * len(tasks)
    height = SIMILARITY_MARGIN_HEIGHT + SIMILARITY_CELL * len(tasks)
    fig = _new_figure(width, height)
    ax = fig.subplots()
    if similarity['matrix'] is None:
        ax.set_axis_off()
        ax.text(0.5, 0.5, 'no layer where the router chooses\namong experts common to all tasks',
                ha='center', va='center')
    else:
        matrix = np.array([[np.nan if v is None else v for v in row]
                           for row in similarity['matrix']], dtype=np.float64)
        image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap='magma')
        for i in range(len(tasks)):
            for j in range(len(tasks)):
                if np.isfinite(matrix[i, j]):
                    ax.text(j, i, f'{matrix[i, j]:.2f}', ha='center', va='center', fontsize=8,
                            color='black' if matrix[i, j] > 0.6 else 'white')
        ax.set_xticks(range(len(tasks)))
        ax.set_xticklabels(tasks, rotation=45, ha='right', fontsize=8)
        ax.set_yticks(range(len(tasks)))
        ax.set_yticklabels(tasks, fontsize=8)
        ax.set_xlabel('task', fontsize=8)
        ax.set_ylabel('task', fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.8, label='cosine similarity of routing')
    ax.set_title(f"Routing similarity ({len(similarity['layers'])} layers)", fontsize=10)
    return _save(fig, path, dpi)
