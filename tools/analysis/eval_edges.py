"""Score a folder of edge-probability PNGs against ground-truth edges, as SEISM does: odsF, oisF,
AP and the precision-recall curve, without MATLAB.

PRED_DIR holds ``<id>.png``: one-channel edge probabilities, 8-bit (``v / 255``, the format SEISM
reads; ``tools/test.py --save-edges DIR`` writes them) or 16-bit (``v / 65535``). GT_DIR holds
``<id>.png`` ({0, 1} or {0, 255}, 1 / 255 = edge) or the PASCAL-Context ``<id>.mat`` with a
``LabelMap`` (``pascal-context/trainval/``), from which the edges are derived as mmase derives them
for training. The ids are those of ``--ids`` (one a line, e.g. SEISM's ``test_new`` list, 2498 of
PASCAL-Context's 5105 val images), else every PNG of PRED_DIR.

Each image is evaluated by ``mmase.evaluation.EdgeMeter`` (99 thresholds, thinning, one-to-one
matching within ``--tolerance`` of the image diagonal: 0.0075 for PASCAL, 0.011 for NYUD) in
``--workers`` processes; ``--matcher seism`` counts the pairs with pyEdgeEval's thinning and
compiled ``correspondPixels`` instead (its numbers, for a paper table; ~20 s per image; needs
``pip install -r requirements/seism.txt``; docs/evaluation.md). Printed: odsF, oisF, AP
(percent); written to ``--out-dir`` (default ``<PRED_DIR>_eval``): ``edge_pr.json`` (curve,
per-threshold counts and the summary) and ``edge_pr.png`` (the P/R curve plot). Inputs are all
checked (missing files, differing sizes, values out of range, non-binary ground truth: an error
naming the file) before anything is written, and each output file appears complete or not at
all.

Example::

    python tools/analysis/eval_edges.py work_dirs/edges data/PASCAL_MT/pascal-context/trainval \
        --ids data/PASCAL_MT/gt_sets/test_new.txt --workers 2
"""
import argparse
import json
import os
import os.path as osp
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, Sequence, Tuple

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a clone
from mmase.evaluation import EdgeMeter  # noqa: E402
from mmase.evaluation.metrics.edge_files import (find_edge_gt, read_edge_gt,  # noqa: E402
                                                 read_edge_png)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='odsF / oisF / AP of edge-probability PNGs against ground-truth edges')
    parser.add_argument('pred_dir', help='folder of <id>.png edge probabilities')
    parser.add_argument('gt_dir', help='folder of <id>.png binary edges or PASCAL <id>.mat')
    parser.add_argument('--ids', help='file of image ids, one a line (default: every PNG of '
                        'pred_dir)')
    parser.add_argument('--tolerance', type=float, default=0.0075,
                        help='maximum matching distance, fraction of the image diagonal '
                        '(0.0075 PASCAL, 0.011 NYUD; default: 0.0075)')
    parser.add_argument('--matcher', choices=('exact', 'seism'), default='exact',
                        help='exact maximum matching (fast, default) or pyEdgeEval\'s '
                        'correspond_pixels (SEISM parity)')
    parser.add_argument('--workers', type=int, default=1,
                        help='evaluation processes (default: 1)')
    parser.add_argument('--out-dir', help='where edge_pr.json and edge_pr.png go (default: '
                        '<pred_dir>_eval)')
    return parser.parse_args(argv)


def read_ids(pred_dir: str, ids_file: str = None) -> List[str]:
    """The image ids to evaluate (``ids_file`` lines, else the PNG stems of ``pred_dir``)."""
    if not osp.isdir(pred_dir):
        raise FileNotFoundError(f'prediction folder {pred_dir} does not exist')
    if ids_file is not None:
        if not osp.isfile(ids_file):
            raise FileNotFoundError(f'--ids: no such file {ids_file}')
        with open(ids_file) as f:
            ids = [line.strip() for line in f if line.strip()]
        if not ids:
            raise ValueError(f'--ids: {ids_file} lists no image id')
        if len(set(ids)) != len(ids):
            raise ValueError(f'--ids: {ids_file} lists some ids twice')
        return ids
    ids = sorted(name[:-4] for name in os.listdir(pred_dir) if name.endswith('.png'))
    if not ids:
        raise ValueError(f'no <id>.png prediction in {pred_dir}')
    return ids


def pair_paths(pred_dir: str, gt_dir: str, ids: Sequence[str]) -> List[Tuple[str, str]]:
    """``(prediction, ground truth)`` paths of every id; errors name the first missing file."""
    if not osp.isdir(gt_dir):
        raise FileNotFoundError(f'ground-truth folder {gt_dir} does not exist')
    pairs = []
    for img_id in ids:
        pred_path = osp.join(pred_dir, img_id + '.png')
        if not osp.isfile(pred_path):
            raise FileNotFoundError(f'no prediction for image {img_id!r}: {pred_path} is missing')
        pairs.append((pred_path, find_edge_gt(gt_dir, img_id)))
    return pairs


def evaluate_one(meter: EdgeMeter, pred_path: str, gt_path: str) -> Dict[str, np.ndarray]:
    """The EdgeMeter record of one image; errors name the files."""
    pred = read_edge_png(pred_path)
    gt = read_edge_gt(gt_path)
    if pred.shape != gt.shape:
        raise ValueError(f'{pred_path} is {pred.shape[1]}x{pred.shape[0]} (WxH) but its ground '
                         f'truth {gt_path} is {gt.shape[1]}x{gt.shape[0]}')
    try:
        record = meter.process(pred, gt)
    except ValueError as error:
        raise ValueError(f'{pred_path} vs {gt_path}: {error}') from error
    assert record is not None  # binary ground truth: every pixel is labelled
    return record


def _evaluate_chunk(meter: EdgeMeter, pairs: Sequence[Tuple[str, str]]) -> list:
    return [evaluate_one(meter, *pair) for pair in pairs]


def evaluate(pairs: Sequence[Tuple[str, str]], tolerance: float, workers: int,
             matcher: str = 'exact') -> list:
    """Records of all pairs, in order, with a progress bar; ``workers`` processes if > 1."""
    from mmengine.utils import ProgressBar
    meter = EdgeMeter(tolerance=tolerance, matcher=matcher)
    bar = ProgressBar(len(pairs))
    records = []
    if workers <= 1:
        for pair in pairs:
            records.append(evaluate_one(meter, *pair))
            bar.update()
    else:
        chunk = 4
        with ProcessPoolExecutor(workers) as pool:
            futures = [pool.submit(_evaluate_chunk, meter, pairs[i:i + chunk])
                       for i in range(0, len(pairs), chunk)]
            try:
                for future in futures:
                    part = future.result()
                    records.extend(part)
                    bar.update(len(part))
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    sys.stdout.write('\n')
    return records


def _atomic_write(path: str, write) -> None:
    """Run ``write(file object)`` on a temporary file next to ``path``, then rename it."""
    fd, tmp = tempfile.mkstemp(suffix='.tmp', dir=osp.dirname(osp.abspath(path)))
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def plot_curve(summary: dict, path: str, title: str) -> None:
    """Write the precision-recall curve with the odsF point and iso-F lines as a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    grid = np.linspace(0.01, 1, 100)
    for f_value in np.arange(0.1, 1.0, 0.1):
        recall = grid[grid > f_value / (2 - f_value)]
        ax.plot(recall, f_value * recall / (2 * recall - f_value), color='0.85', lw=0.8)
    recall, precision = np.array(summary['recall']), np.array(summary['precision'])
    drawn = (recall > 0) | (precision > 0)
    ax.plot(recall[drawn], precision[drawn], color='tab:red', lw=2,
            label=f'odsF {summary["odsF"]:.2f}, oisF {summary["oisF"]:.2f}, '
            f'AP {summary["AP"]:.2f}')
    best = int(np.argmax(summary['f']))
    ax.plot(recall[best], precision[best], 'o', color='tab:red')
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel='Recall', ylabel='Precision', title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc='lower left')
    fig.tight_layout()
    _atomic_write(path, lambda f: fig.savefig(f, format='png'))
    plt.close(fig)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if isinstance(args.workers, bool) or args.workers < 1:
        raise SystemExit(f'--workers must be >= 1, got {args.workers}')
    # checks the tolerance (and that pyEdgeEval imports, for --matcher seism) before reading
    EdgeMeter(tolerance=args.tolerance, matcher=args.matcher)
    ids = read_ids(args.pred_dir, args.ids)
    pairs = pair_paths(args.pred_dir, args.gt_dir, ids)
    print(f'evaluating {len(pairs)} images of {args.pred_dir} against {args.gt_dir} '
          f'(tolerance {args.tolerance} of the diagonal, {args.matcher} matcher, '
          f'{args.workers} worker(s))')
    records = evaluate(pairs, args.tolerance, args.workers, args.matcher)
    meter = EdgeMeter(tolerance=args.tolerance)
    summary = meter.summary(records)
    totals = {key: np.sum([r[key] for r in records], axis=0).tolist()
              for key in ('matched', 'predicted', 'gt_edges')}
    out_dir = args.out_dir or osp.normpath(args.pred_dir) + '_eval'
    os.makedirs(out_dir, exist_ok=True)
    result = dict(pred_dir=args.pred_dir, gt_dir=args.gt_dir, ids=args.ids,
                  tolerance=args.tolerance, matcher=args.matcher, **summary, counts=totals)
    json_path, png_path = osp.join(out_dir, 'edge_pr.json'), osp.join(out_dir, 'edge_pr.png')
    _atomic_write(json_path, lambda f: f.write(json.dumps(result, indent=1).encode()))
    plot_curve(summary, png_path, f'{osp.basename(osp.normpath(args.pred_dir))} '
               f'({len(records)} images)')
    print(f'odsF {summary["odsF"]:.2f} (threshold {summary["ods_threshold"]:.2f})  '
          f'oisF {summary["oisF"]:.2f}  AP {summary["AP"]:.2f}  ({len(records)} images)')
    print(f'wrote {json_path} and {png_path}')
    return result


if __name__ == '__main__':
    try:
        main()
    except (FileNotFoundError, ValueError, OSError, KeyError) as error:
        sys.exit(f'eval_edges.py: error: {error}')
