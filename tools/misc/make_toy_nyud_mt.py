"""Write the toy NYUD-v2 multi-task dataset (synthetic rooms in the exact NYUDv2 layout).

Usage::

    python tools/misc/make_toy_nyud_mt.py --out data/toy_nyud_mt [--seed 0] \
        [--variant mtinet|invpt]

From an installed wheel: ``python -m mmase.apis.mmseg_tool
mmase::tools/misc/make_toy_nyud_mt.py --out DIR``. The same arguments give byte-identical files.
See :mod:`mmase.datasets.toy_nyud_mt`.
"""
import argparse
import os

from mmase.datasets.toy_nyud_mt import TOY_VARIANTS, make_toy_nyud_mt


def parse_args():
    parser = argparse.ArgumentParser(description='Write the toy NYUD-v2 multi-task dataset.')
    out = os.environ.get('MMASE_TOY_NYUD_MT', 'data/toy_nyud_mt')
    parser.add_argument('--out', default=out, help='output folder (default: $MMASE_TOY_NYUD_MT, '
                        'the toy configs\' data_root, else data/toy_nyud_mt in the working '
                        'directory)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--num-train', type=int, default=30, help='training images')
    parser.add_argument('--num-val', type=int, default=15, help='validation images')
    parser.add_argument('--min-size', type=int, default=64, help='smallest image side (px)')
    parser.add_argument('--max-size', type=int, default=96, help='largest image side (px)')
    parser.add_argument(
        '--variant', default='mtinet', choices=sorted(TOY_VARIANTS),
        help="archive variant: 'mtinet' (.jpg images, .npy normals/edges) or 'invpt' "
        '(.png images, normals and edges)')
    return parser.parse_args()


def main():
    args = parse_args()
    splits = make_toy_nyud_mt(args.out, num_train=args.num_train, num_val=args.num_val,
                              seed=args.seed, min_size=args.min_size, max_size=args.max_size,
                              variant=args.variant)
    print(f'wrote {len(splits["train"])} train and {len(splits["val"])} val samples '
          f'({args.variant} variant) to {args.out}')


if __name__ == '__main__':
    main()
