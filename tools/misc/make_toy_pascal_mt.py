"""Write the toy PASCAL_MT dataset (synthetic scenes in the exact PASCAL_MT layout).

Usage::

    python tools/misc/make_toy_pascal_mt.py --out data/toy_pascal_mt [--seed 0]

From an installed wheel: ``python -m mmase.apis.mmseg_tool
mmase::tools/misc/make_toy_pascal_mt.py --out DIR``.
The same seed gives byte-identical files. See :mod:`mmase.datasets.toy_pascal_mt`.
"""
import argparse
import os

from mmase.datasets.toy_pascal_mt import make_toy_pascal_mt


def parse_args():
    parser = argparse.ArgumentParser(description='Write the toy PASCAL_MT dataset.')
    out = os.environ.get('MMASE_TOY_PASCAL_MT', 'data/toy_pascal_mt')
    parser.add_argument('--out', default=out, help='output folder (default: $MMASE_TOY_PASCAL_MT, '
                        'the toy configs\' data_root, else data/toy_pascal_mt in the working '
                        'directory)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--num-train', type=int, default=40, help='training images')
    parser.add_argument('--num-val', type=int, default=20, help='validation images')
    parser.add_argument('--min-size', type=int, default=64, help='smallest image side (px)')
    parser.add_argument('--max-size', type=int, default=128, help='largest image side (px)')
    return parser.parse_args()


def main():
    args = parse_args()
    splits = make_toy_pascal_mt(args.out, num_train=args.num_train, num_val=args.num_val,
                                seed=args.seed, min_size=args.min_size,
                                max_size=args.max_size)
    print(f'wrote {len(splits["train"])} train and {len(splits["val"])} val samples to '
          f'{args.out}')


if __name__ == '__main__':
    main()
