"""A paper-style figure of one image's multi-task prediction (and ground truth, when there is one).

Layout: columns = the input image, then one column per task; row 1 = prediction, row 2 = ground
truth (only when the sample has any). Under each task column a key: a class legend (names from
the dataset) for segmentation, a colour bar for saliency / edges / depth (metres) and an
orientation sphere for normals; the drawing follows the task's declared ``activation``
(:func:`~mmase.visualization.task_maps.map_kind`), so another regressed map gets channel 0 with
a colour bar. Drawn with matplotlib's object API (no pyplot state), so it is safe in tools and
tests.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from mmase.tasks import TaskSpec, get_task_spec
from .task_maps import map_kind, normals_to_rgb, random_palette

#: Panel side (inches) and caption font size (points): 10 pt at 100 dpi is ~14 px tall.
PANEL_INCHES = 2.0
FONT_SIZE = 10
#: At most this many classes in a legend (the most frequent first).
MAX_LEGEND = 8
_TITLES = dict(semseg='semantic seg.', human_parts='human parts', sal='saliency',
               normals='surface normals', edge='edges', depth='depth')


def orientation_key(size: int = 64, y_up: bool = True) -> np.ndarray:
    """``(size, size, 3)`` uint8 sphere coloured as a normal map: pixel (u, v) of the unit disk
    (v down the image) shows the normal ``(u, -v, sqrt(1 - u^2 - v^2))`` when ``y_up`` (x right,
    y up, z towards the viewer), else ``(u, v, ...)`` (y down); outside the disk white."""
    grid = (np.arange(size) + 0.5) / size * 2 - 1
    u, v = np.meshgrid(grid, grid)
    inside = u ** 2 + v ** 2 <= 1
    normals = np.stack([u, -v if y_up else v, np.sqrt(np.clip(1 - u ** 2 - v ** 2, 0, 1))])
    out = normals_to_rgb(normals * inside)
    out[~inside] = 255
    return out


def _overlay(image: np.ndarray, labels: np.ndarray, palette: np.ndarray, ignore: float,
             alpha: float, skip: Sequence[int] = ()) -> np.ndarray:
    """Blend ``palette[labels]`` over ``image`` with opacity ``alpha``; ``ignore`` and the
    ``skip`` classes (background) keep the image."""
    valid = (labels != ignore) & (labels >= 0) & (labels < len(palette))
    for cls in skip:
        valid &= labels != cls
    out = image.astype(np.float32).copy()
    colours = palette[np.where(valid, labels, 0)].astype(np.float32)
    out[valid] = (1 - alpha) * out[valid] + alpha * colours[valid]
    return out.round().astype(np.uint8)


class TaskFigure:
    """Compose the figure; see the module docstring.

    Args:
        tasks (Sequence[str]): Task columns, in order.
        dataset_meta (dict, optional): ``task_classes`` / ``task_palettes`` (and mmseg's
            ``classes`` / ``palette`` for ``semseg``); ``normals_y`` (``'up'`` default, or
            ``'down'``) orients the normals key: the normals' y axis points up or down the
            image (ours: datasets differ; the toy NYUD is y up, the toy PASCAL height field y
            down).
        alpha (float): Opacity of segmentation colours over the image. Default 0.6.
        dpi (int): Pixels per inch of the returned canvas. Default 100.
    """

    def __init__(self, tasks: Sequence[str], dataset_meta: Optional[dict] = None,
                 alpha: float = 0.6, dpi: int = 100):
        self.tasks = list(tasks)
        self.specs: Dict[str, TaskSpec] = {t: get_task_spec(t) for t in self.tasks}
        self.meta = dataset_meta or {}
        self.alpha = alpha
        self.dpi = dpi

    def class_names(self, task: str, num: int) -> List[str]:
        names = (self.meta.get('task_classes') or {}).get(task)
        if names is None and task == 'semseg':
            names = self.meta.get('classes')
        names = list(names) if names is not None else []
        return names + [f'class {i}' for i in range(len(names), num)]

    def palette(self, task: str, num: int) -> np.ndarray:
        palette = (self.meta.get('task_palettes') or {}).get(task)
        if palette is None and task == 'semseg':
            palette = self.meta.get('palette')
        if palette is None or len(palette) < num:
            return random_palette(max(num, 1))
        return np.asarray(palette, np.uint8)

    @staticmethod
    def _maps(sample, field: str) -> Optional[np.ndarray]:
        if field not in sample:
            return None
        data = getattr(sample, field).data
        if isinstance(data, np.ndarray):  # mmseg's browse_dataset passes sample.numpy()
            return data.astype(np.float32)
        return data.detach().cpu().float().numpy()

    def draw(self, image: np.ndarray, sample, title: Optional[str] = None) -> Figure:
        """Args: image (H, W, 3) RGB uint8; sample with ``pred_*`` / ``gt_*``.

        Returns: the matplotlib Figure (not shown)."""
        tasks = [t for t in self.tasks
                 if self.specs[t].pred_field in sample or self.specs[t].gt_field in sample]
        has_gt = any(self.specs[t].gt_field in sample for t in tasks)
        has_pred = any(self.specs[t].pred_field in sample for t in tasks)
        rows = [r for r, present in (('prediction', has_pred), ('ground truth', has_gt))
                if present]
        height, width = image.shape[:2]
        aspect = height / max(width, 1)
        cols = 1 + len(tasks)
        panel_h = PANEL_INCHES * aspect
        key_h = 0.9
        fig = Figure(figsize=(cols * PANEL_INCHES, len(rows) * (panel_h + 0.35) + key_h + 0.4),
                     dpi=self.dpi)
        FigureCanvasAgg(fig)
        grid = fig.add_gridspec(len(rows) + 1, cols,
                                height_ratios=[panel_h + 0.35] * len(rows) + [key_h],
                                hspace=0.15, wspace=0.06, left=0.03, right=0.99,
                                bottom=0.01, top=0.97 if title is None else 0.91)
        if title:
            fig.suptitle(title, fontsize=FONT_SIZE + 1)
        for r, row in enumerate(rows):
            ax = fig.add_subplot(grid[r, 0])
            ax.imshow(image, interpolation='nearest')
            ax.set_title('input' if r == 0 else '', fontsize=FONT_SIZE)
            ax.set_ylabel(row, fontsize=FONT_SIZE)
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
        for c, task in enumerate(tasks, start=1):
            spec = self.specs[task]
            maps = {row: self._maps(sample, spec.pred_field if row == 'prediction'
                                    else spec.gt_field) for row in rows}
            key = self._draw_task(fig, grid, c, task, spec, image, maps, rows)
            self._draw_key(fig, grid[len(rows), c], task, spec, maps, key)
        return fig

    def _draw_task(self, fig, grid, col, task, spec, image, maps, rows):
        key = {}
        kind = map_kind(spec)
        if kind == 'classes':
            num = int(max([m[m != spec.ignore_value].max() for m in maps.values()
                           if m is not None and (m != spec.ignore_value).any()] + [0]))
            num = max(num + 1, len(self.class_names(task, 0)))
            key['palette'] = self.palette(task, num)
            key['names'] = self.class_names(task, num)
            counts = np.zeros(len(key['palette']), np.int64)
            for m in maps.values():
                if m is not None:
                    lab = m[0][m[0] != spec.ignore_value].astype(np.int64)
                    lab = lab[(lab >= 0) & (lab < len(counts))]
                    counts += np.bincount(lab, minlength=len(counts))[:len(counts)]
            # ours: a class named 'background' stays transparent and out of the legend
            key['skip'] = [i for i, n in enumerate(key['names']) if n == 'background']
            counts[key['skip']] = 0
            key['counts'] = counts
        elif kind in ('depth', 'scalar'):  # depth (0 = invalid), other scalars
            valid = (lambda m: m[0] > 0) if kind == 'depth' else (
                lambda m: m[0] != spec.ignore_value)
            values = np.concatenate([m[0][valid(m)].ravel() for m in maps.values()
                                     if m is not None] + [np.zeros(0)])
            values = values[np.isfinite(values)]
            key['range'] = (float(values.min()), float(values.max())) if values.size else (0, 1)
            if key['range'][1] <= key['range'][0]:
                key['range'] = (key['range'][0], key['range'][0] + 1e-3)
        for r, row in enumerate(rows):
            ax = fig.add_subplot(grid[r, col])
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            caption = f'{_TITLES.get(task, task)}' if r == 0 else ''
            ax.set_title(caption, fontsize=FONT_SIZE)
            data = maps[row]
            if data is None:
                ax.text(0.5, 0.5, 'not available', ha='center', va='center',
                        fontsize=FONT_SIZE - 1, color='0.4', transform=ax.transAxes)
                continue
            if kind == 'classes':
                labels = data[0].astype(np.int64)
                if labels.shape != image.shape[:2]:
                    ax.imshow(key['palette'][np.clip(labels, 0, len(key['palette']) - 1)],
                              interpolation='nearest')
                else:
                    ax.imshow(_overlay(image, labels, key['palette'], spec.ignore_value,
                                       self.alpha, key['skip']), interpolation='nearest')
            elif kind == 'probability':
                values = np.ma.masked_equal(data[0], spec.ignore_value)
                cmap = ListedColormap(_gray(256)).with_extremes(bad=(0.8, 0.1, 0.1))
                key['mappable'] = ax.imshow(values, cmap=cmap, vmin=0, vmax=1,
                                            interpolation='nearest')
            elif kind == 'vectors':
                ax.imshow(normals_to_rgb(data), interpolation='nearest')
            else:  # depth: 0 = invalid; other kinds: channel 0, ignore_value = invalid
                invalid = ~(data[0] > 0) if kind == 'depth' else (
                    data[0] == spec.ignore_value)
                depth = np.ma.masked_where(invalid | ~np.isfinite(data[0]), data[0])
                import matplotlib
                cmap = matplotlib.colormaps['viridis'].with_extremes(bad=(0.85, 0.85, 0.85))
                key['mappable'] = ax.imshow(depth, cmap=cmap, vmin=key['range'][0],
                                            vmax=key['range'][1], interpolation='nearest')
        return key

    def _draw_key(self, fig, cell, task, spec, maps, key):
        kind = map_kind(spec)
        if kind == 'classes':
            ax = fig.add_subplot(cell)
            ax.axis('off')
            present = [i for i in np.argsort(-key['counts'], kind='stable') if key['counts'][i]]
            shown = present[:MAX_LEGEND]
            handles = [Patch(facecolor=key['palette'][i] / 255.0, edgecolor='0.3',
                             label=key['names'][i]) for i in shown]
            if not present:
                ax.text(0.5, 0.8, 'background only', ha='center', fontsize=FONT_SIZE - 2,
                        transform=ax.transAxes)
            if len(present) > len(shown):
                handles.append(Patch(facecolor='white', edgecolor='white',
                                     label=f'+{len(present) - len(shown)} more'))
            ax.legend(handles=handles, loc='upper center', fontsize=FONT_SIZE - 2, ncol=2,
                      frameon=False, handlelength=1.0, columnspacing=0.6,
                      borderaxespad=0.0, labelspacing=0.25)
        elif kind != 'vectors' and 'mappable' in key:
            sub = cell.subgridspec(3, 1, height_ratios=[0.25, 1, 2.2])
            ax = fig.add_subplot(sub[1])
            bar = fig.colorbar(key['mappable'], cax=ax, orientation='horizontal')
            if kind == 'probability':
                label = 'edge probability' if task == 'edge' else 'foreground probability'
            else:
                label = 'depth (m)' if kind == 'depth' else f'{task} (channel 0)'
            bar.set_label(label, fontsize=FONT_SIZE - 1)
            bar.ax.tick_params(labelsize=FONT_SIZE - 2)
        elif kind == 'vectors':
            sub = cell.subgridspec(1, 2, width_ratios=[1, 1.3], wspace=0.05)
            ax = fig.add_subplot(sub[0])
            y_up = self.meta.get('normals_y', 'up') != 'down'
            ax.imshow(orientation_key(y_up=y_up), interpolation='bilinear')
            ax.axis('off')
            text = fig.add_subplot(sub[1])
            text.axis('off')
            text.text(0.0, 0.5, 'RGB = (n + 1) / 2\nx right, y ' + ('up' if y_up else 'down')
                      + ',\nz to the viewer',
                      fontsize=FONT_SIZE - 2, va='center', transform=text.transAxes)
        else:
            fig.add_subplot(cell).axis('off')


def _gray(n):
    ramp = np.linspace(0, 1, n)
    return np.stack([ramp, ramp, ramp, np.ones(n)], axis=1)


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render ``fig`` to an (H, W, 3) RGB uint8 array."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
