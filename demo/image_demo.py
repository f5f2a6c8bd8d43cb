"""Predict every task of an image (or a folder of images) and save a figure and the raw maps.

Example (the README's toy checkpoint)::

    python demo/image_demo.py data/toy_pascal_mt/JPEGImages/toy_000040.jpg \\
        configs/toy/ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py \\
        work_dirs/toy/iter_300.pth --out-dir demo_out

writes ``demo_out/vis/toy_000040.png`` (the figure) and ``demo_out/pred/<task>/toy_000040.png``
(class ids; probability x 255; normals RGB (n + 1) / 2 x 255; depth uint16 millimetres).
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config, DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone
from mmase.apis import MultiTaskInferencer  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Multi-task prediction of images')
    parser.add_argument('img', help='image file or folder of images')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file of that config')
    parser.add_argument('--out-dir', default='demo_out', help='output folder (vis/ and pred/)')
    parser.add_argument('--device', default=None, help="'cpu', 'cuda:0' (default: cuda if any)")
    parser.add_argument('--tasks', nargs='+', help='tasks to keep (default: all of the model)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--format', choices=['png', 'pdf', 'svg'], default='png',
                        help='figure format')
    parser.add_argument('--depth-format', choices=['png', 'npy'], default='png',
                        help='depth map: uint16 PNG in mm, or float32 .npy in metres')
    parser.add_argument('--show', action='store_true', help='show each figure')
    parser.add_argument('--max-pixels', type=int, default=None,
                        help='largest image (width x height) accepted, checked from the file '
                             'header before decoding (default: $MMASE_MAX_IMAGE_PIXELS, else '
                             '2**28 = 16384 x 16384)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value (xxx=yyy format)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.exists(args.img):
        raise SystemExit(f'image_demo.py: error: {args.img} not found')
    if not osp.isfile(args.config):
        raise SystemExit(f'image_demo.py: error: config {args.config} not found')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    inferencer = MultiTaskInferencer(model=cfg, weights=args.checkpoint,
                                     device=args.device, tasks=args.tasks,
                                     max_pixels=args.max_pixels)
    result = inferencer(args.img, out_dir=args.out_dir, batch_size=args.batch_size,
                        fig_format=args.format, depth_format=args.depth_format, show=args.show)
    print(f'{len(result["predictions"])} image(s): figures in {osp.join(args.out_dir, "vis")}, '
          f'maps in {osp.join(args.out_dir, "pred")}')
    return result


if __name__ == '__main__':
    main()
