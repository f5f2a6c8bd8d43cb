"""Time mmase's edge odsF against pyEdgeEval's port of SEISM on generated PASCAL-size maps.

For every kind of :mod:`mmase.evaluation.metrics.synthetic_edges` (sharp, blurred, shifted, noisy,
empty prediction, empty ground truth) and ``--seeds`` seeds, one 500x375 image is evaluated at the
99 thresholds by

- mmase: ``EdgeMeter.process`` (thinning + exact maximum matching), in this process;
- the reference: ``pyEdgeEval.common.binary_label.evaluate_boundaries_threshold`` (its MATLAB-style
  thinning + the compiled ``correspond_pixels``), the pipeline SEISM runs;

in one process on one core (OpenMP/OpenCV threads set to 1), both in the same run, so the
speed-up is a ratio of times measured together. Printed per map: seconds of each, speed-up, odsF of
each, the largest difference of matched counts (at the thresholds where both thinnings give the
same map size) and the number of thresholds where the thinnings differ; then the median seconds per
image and the estimated edge-evaluation time of PASCAL-Context val (SEISM's ``test_new`` 2,498
images and all 5,105) with ``--workers`` processes, i.e. ``MultiTaskMetric.num_workers`` or
``eval_edges.py --workers``.

Example::

    python tools/analysis/benchmark_edges.py --seeds 3 --out work_dirs/benchmark_edges.json
"""
import os

for _var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'):
    os.environ.setdefault(_var, '1')  # one core per process, before numpy loads

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mmase.evaluation import EdgeMeter  # noqa: E402
from mmase.evaluation.metrics.synthetic_edges import (SYNTHETIC_KINDS,  # noqa: E402
                                                      synthetic_edge_pair)

#: PASCAL-Context val sizes: SEISM's ``test_new`` edge list and all of val.
PASCAL_VAL_IMAGES = {'test_new (2498)': 2498, 'val (5105)': 5105}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Time mmase edge odsF against pyEdgeEval')
    parser.add_argument('--kinds', nargs='+', default=list(SYNTHETIC_KINDS),
                        choices=SYNTHETIC_KINDS, help='map kinds (default: all)')
    parser.add_argument('--seeds', type=int, default=2, help='maps per kind (default: 2)')
    parser.add_argument('--tolerance', type=float, default=0.0075,
                        help='matching distance, fraction of the diagonal (default: 0.0075)')
    parser.add_argument('--workers', type=int, default=2,
                        help='processes assumed for the full-val estimate (default: 2)')
    parser.add_argument('--maps', help='.npz of p<i> / g<i> edge maps to use instead of the '
                        'synthetic kinds (benchmark_eval.py --save-edge-maps)')
    parser.add_argument('--max-maps', type=int, help='at most this many maps of --maps')
    parser.add_argument('--matcher', choices=('exact', 'seism'), default='exact',
                        help='the EdgeMeter matcher timed against pyEdgeEval (default: exact)')
    parser.add_argument('--no-reference', action='store_true',
                        help='time mmase only (pyEdgeEval not needed)')
    parser.add_argument('--out', help='write the measurements as JSON to this file')
    return parser.parse_args(argv)


def edge_maps(args):
    """(kind, index, probability, ground truth) of the maps to time: ``--maps`` (an ``.npz`` of
    ``p<i>`` / ``g<i>`` pairs, e.g. a trained model's, ``benchmark_eval.py --save-edge-maps``) or
    the synthetic kinds."""
    if args.maps:
        maps = np.load(args.maps)
        count = len([key for key in maps.files if key.startswith('p')])
        for i in range(min(count, args.max_maps or count)):
            yield 'model', i, maps[f'p{i}'], maps[f'g{i}']
        return
    for kind in args.kinds:
        for seed in range(args.seeds):
            yield (kind, seed) + tuple(synthetic_edge_pair(kind, seed))


def f_curve(matched, predicted, gt_edges):
    """F at every threshold (fractions) from per-threshold counts."""
    matched, predicted = np.asarray(matched, float), np.asarray(predicted, float)
    precision = np.divide(matched, predicted, out=np.zeros_like(matched), where=predicted > 0)
    recall = matched / gt_edges if gt_edges else np.zeros_like(matched)
    total = precision + recall
    return np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)


def main(argv=None):
    args = parse_args(argv)
    if args.seeds < 1 or args.workers < 1:
        raise SystemExit('--seeds and --workers must be >= 1')
    cv2.setNumThreads(1)
    reference = None
    if not args.no_reference:
        try:
            from pyEdgeEval.common.binary_label import evaluate_boundaries_threshold
        except ImportError as error:
            raise SystemExit(f'pyEdgeEval is not installed ({error}): pip install pyEdgeEval, '
                             f'or pass --no-reference')
        reference = evaluate_boundaries_threshold
    meter = EdgeMeter(tolerance=args.tolerance, matcher=args.matcher)
    warm = np.zeros((12, 12), np.uint8)
    warm[6] = 1
    meter.process(np.linspace(0, 1, 144).reshape(12, 12), warm)  # compiled loops: not timed
    rows = []
    header = (f'{"map":16s} {"mmase s":>8s} {"ref s":>8s} {"speed-up":>8s} {"odsF":>7s} '
              f'{"ref odsF":>8s} {"dF":>6s} {"max dcount (%)":>15s} {"thin diff":>9s}')
    print(header)
    for kind, seed, pred, gt in edge_maps(args):
        start = time.perf_counter()
        record = meter.process(pred, gt)
        seconds = time.perf_counter() - start
        ods = float(f_curve(record['matched'], record['predicted'],
                            record['gt_edges']).max() * 100)
        row = dict(kind=kind, seed=seed, seconds=seconds, odsF=ods,
                   matched=record['matched'].tolist(), predicted=record['predicted'].tolist(),
                   gt_edges=int(record['gt_edges']))
        line = f'{kind + "/" + str(seed):16s} {seconds:8.3f}'
        if reference is not None:
            start = time.perf_counter()
            count_r, sum_r, count_p, sum_p = reference(meter.thresholds, pred, gt.astype(bool),
                                                       max_dist=args.tolerance)
            ref_seconds = time.perf_counter() - start
            ref_ods = float(f_curve(count_p, sum_p, int(gt.sum())).max() * 100)
            # counts compared where both thinnings give the same number of pixels
            # (pyEdgeEval's thinning stops after a first sub-iteration that deletes
            # nothing, so a few maps keep a pixel or two more than MATLAB's and mmase's)
            same = record['predicted'] == np.asarray(sum_p, int)
            diff = np.r_[0, np.abs(record['matched'] - count_p)[same]]
            rel = float((diff / np.maximum(np.r_[1, count_p[same]], 1)).max() * 100)
            row['thresholds_thinned_differently'] = int((~same).sum())
            row.update(ref_seconds=ref_seconds, ref_odsF=ref_ods,
                       ref_matched=np.asarray(count_p, int).tolist(),
                       ref_predicted=np.asarray(sum_p, int).tolist(),
                       max_count_diff=int(diff.max()), max_count_diff_percent=rel)
            line += (f' {ref_seconds:8.2f} {ref_seconds / seconds:7.1f}x {ods:7.2f} '
                     f'{ref_ods:8.2f} {ods - ref_ods:+6.2f} {int(diff.max()):4d} '
                     f'({rel:.2f}%) {int((~same).sum()):9d}')
        else:
            line += f' {"":8s} {"":8s} {ods:7.2f}'
        print(line, flush=True)
        rows.append(row)

    times = np.array([row['seconds'] for row in rows])
    summary = dict(images=len(rows), median_seconds=float(np.median(times)),
                   max_seconds=float(times.max()), mean_seconds=float(times.mean()),
                   workers=args.workers)
    print(f'\nmmase: median {summary["median_seconds"]:.3f} s, mean {summary["mean_seconds"]:.3f} '
          f's, max {summary["max_seconds"]:.3f} s per 500x375 image (99 thresholds, one core)')
    total_gt = sum(row['gt_edges'] for row in rows)
    summary['pooled_odsF'] = float(f_curve(np.sum([r['matched'] for r in rows], 0),
                                           np.sum([r['predicted'] for r in rows], 0),
                                           total_gt).max() * 100)
    if reference is not None:
        ref_curve = f_curve(np.sum([r['ref_matched'] for r in rows], 0),
                            np.sum([r['ref_predicted'] for r in rows], 0), total_gt)
        summary['ref_pooled_odsF'] = float(ref_curve.max() * 100)
        print(f'odsF over all maps (counts pooled, as the metric): mmase '
              f'{summary["pooled_odsF"]:.3f}, pyEdgeEval {summary["ref_pooled_odsF"]:.3f}')
        ref_times = np.array([row['ref_seconds'] for row in rows])
        summary.update(ref_median_seconds=float(np.median(ref_times)),
                       speed_up_total=float(ref_times.sum() / times.sum()),
                       speed_up_median=float(np.median(ref_times / times)))
        print(f'pyEdgeEval: median {summary["ref_median_seconds"]:.2f} s per image; speed-up '
              f'{summary["speed_up_total"]:.1f}x (total time), median per map '
              f'{summary["speed_up_median"]:.1f}x')
    for name, count in PASCAL_VAL_IMAGES.items():
        hours = count * summary['mean_seconds'] / args.workers / 3600
        summary[f'estimate_hours {name}'] = hours
        line = (f'PASCAL-Context {name}: ~{hours * 60:.0f} min with {args.workers} worker(s) '
                f'(mean time)')
        if reference is not None:
            ref_hours = count * float(np.mean(ref_times)) / args.workers / 3600
            summary[f'ref_estimate_hours {name}'] = ref_hours
            line += f', pyEdgeEval ~{ref_hours:.1f} h'
        print(line)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(summary=summary, maps=rows), f, indent=1)
        print(f'wrote {args.out}')
    return summary


if __name__ == '__main__':
    main()
