"""Confusion matrix of a segmentation task from saved predictions (mmase's version of mmseg's
``tools/analysis_tools/confusion_matrix.py``: same positional arguments and flags; ``--task``
picks the segmentation task, default every one the dataset has).

``prediction_path`` is the folder ``tools/test.py --out DIR`` writes: ``DIR/<task>/<id>.png``
(class ids at the original size); predictions are matched to the ground truth by image id, not
by sorted file order. Each task's matrix is counted by the task's own meter (its declaration's
``SegmentationMeter``: ``human_parts`` leaves out images without person parts, as its metric
does), so the table equals the one ``tools/test.py`` logs. Writes ``save_dir/confusion_matrix_<task>.<format>`` (rows: ground truth,
normalised to 100 % per row) and prints the per-class IoU table of the matrix.

Example::

    python tools/test.py CONFIG CKPT --out work_dirs/preds
    python tools/analysis/confusion_matrix.py CONFIG work_dirs/preds work_dirs/confusion
"""
import argparse
import os.path as osp
import sys

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar, mkdir_or_exist

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a clone
import mmase  # noqa: E402,F401
from mmase.engine.experiment_tasks import apply_experiment_tasks  # noqa: E402
from mmase.tasks import get_task_spec  # noqa: E402
from mmase.evaluation.metrics import build_task_meter, class_table  # noqa: E402
from mmseg.registry import DATASETS  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Confusion matrix from saved predictions')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('prediction_path', help='the tools/test.py --out DIR folder')
    parser.add_argument('save_dir', help='directory where the matrices are saved')
    parser.add_argument('--show', action='store_true', help='show the matrices')
    parser.add_argument('--color-theme', default='winter', help='matplotlib colour map')
    parser.add_argument('--title', default='Normalized Confusion Matrix', help='title prefix')
    parser.add_argument('--task', nargs='+', help='segmentation task(s) (ours)')
    parser.add_argument('--dpi', type=int, default=150, help='figure resolution (ours)')
    parser.add_argument('--format', choices=['png', 'pdf', 'svg'], default='png', help='(ours)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value (xxx=yyy format)')
    return parser.parse_args(argv)


def plot_confusion_matrix(matrix: np.ndarray, labels, title: str, cmap: str, dpi: int) -> Figure:
    """Row-normalised matrix (percent of each ground-truth class), labelled axes."""
    rows = matrix.sum(axis=1, keepdims=True).astype(np.float64)
    with np.errstate(invalid='ignore', divide='ignore'):
        percent = matrix / rows * 100
    num = len(labels)
    side = max(4.0, 0.45 * num + 2)
    fig = Figure(figsize=(side + 1, side), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(np.nan_to_num(percent, nan=0.0), cmap=cmap, vmin=0, vmax=100)
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label('% of the ground-truth class')
    ax.set_title(title)
    ax.set_xlabel('prediction')
    ax.set_ylabel('ground truth')
    ax.set_xticks(np.arange(num), labels, rotation=45, ha='right', rotation_mode='anchor')
    ax.set_yticks(np.arange(num), labels)
    if num <= 25:
        for i in range(num):
            for j in range(num):
                if not np.isnan(percent[i, j]) and percent[i, j] >= 0.5:
                    ax.text(j, i, f'{percent[i, j]:.0f}', ha='center', va='center', fontsize=7,
                            color='k' if percent[i, j] < 60 else 'w')
    fig.tight_layout()
    return fig


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    apply_experiment_tasks(cfg)  # the top-level tasks, after --cfg-options
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    meta = dataset.metainfo
    tasks = args.task or [t for t in meta['tasks'] if get_task_spec(t).activation == 'argmax']
    for task in tasks:
        if task not in meta['tasks'] or get_task_spec(task).activation != 'argmax':
            raise ValueError(f'--task {task}: not a segmentation task of this dataset '
                             f'({list(meta["tasks"])})')
        if not osp.isdir(osp.join(args.prediction_path, task)):
            raise FileNotFoundError(f'{osp.join(args.prediction_path, task)} not found: run '
                                    f'tools/test.py ... --out {args.prediction_path} first')
    mkdir_or_exist(args.save_dir)
    names = {t: list((meta.get('task_classes') or {}).get(t) or meta['classes']) for t in tasks}
    meters = {t: build_task_meter(t, num_classes=len(names[t])) for t in tasks}
    for task, meter in meters.items():
        if not hasattr(meter, 'confusion'):
            raise ValueError(f'--task {task}: its meter {type(meter).__name__} keeps no '
                             f'confusion matrix')
    records = {t: [] for t in tasks}
    progress = ProgressBar(len(dataset))
    for index in range(len(dataset)):
        sample = dataset[index]['data_samples']
        name = sample.metainfo.get('img_id') or osp.splitext(osp.basename(sample.img_path))[0]
        for task in tasks:
            spec = get_task_spec(task)
            path = osp.join(args.prediction_path, task, f'{name}.png')
            pred = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            if pred is None:
                raise FileNotFoundError(f'prediction {path} not found or not an image')
            gt = getattr(sample, spec.gt_field).data[0].numpy()
            if tuple(pred.shape) != tuple(gt.shape):
                raise ValueError(f'{path}: {pred.shape} but the ground truth is '
                                 f'{tuple(gt.shape)}')
            try:
                record = meters[task].process(pred.astype(np.int64), gt)
            except ValueError as error:
                raise ValueError(f'{path}: {error}') from None
            if record is not None:  # None: an image the task's metric leaves out
                records[task].append(record)
        progress.update()
    print()
    matrices = {}
    for task in tasks:
        if not records[task]:
            raise ValueError(f'{task}: no image counted (no labelled pixel in the test set)')
        matrices[task] = meters[task].confusion(records[task])
        scores = meters[task].class_scores(records[task])
        print(f'per class results ({task}):\n{class_table(scores, names[task])}')
        fig = plot_confusion_matrix(matrices[task], names[task], f'{args.title} ({task})',
                                    args.color_theme, args.dpi)
        out = osp.join(args.save_dir, f'confusion_matrix_{task}.{args.format}')
        fig.savefig(out, dpi=args.dpi)
        np.save(osp.join(args.save_dir, f'confusion_matrix_{task}.npy'), matrices[task])
        print(f'written {out}')
        if args.show:
            import matplotlib.pyplot as plt
            plt.imshow(cv2.imread(out)[..., ::-1])
            plt.show()
    return matrices


if __name__ == '__main__':
    main()
