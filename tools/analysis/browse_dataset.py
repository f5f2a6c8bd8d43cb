"""Browse a multi-task dataset: every task's ground truth beside the image, one figure each
(mmase's version of mmseg's ``tools/analysis_tools/browse_dataset.py``, same flags).

The images are drawn as the pipeline leaves them (the train split: cropped, flipped and
photometrically distorted, with the ground truth transformed alike), so this checks the
pipeline as well as the labels.

Example::

    python tools/analysis/browse_dataset.py \\
        configs/toy/ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py \\
        --output-dir work_dirs/browse --not-show
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar, mkdir_or_exist

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a clone
import mmase  # noqa: E402,F401
from mmase.engine.experiment_tasks import apply_experiment_tasks  # noqa: E402
from mmseg.registry import DATASETS, VISUALIZERS  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Browse a multi-task dataset')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--output-dir', default=None, type=str,
                        help='save the figures here (e.g. without a display)')
    parser.add_argument('--not-show', default=False, action='store_true')
    parser.add_argument('--show-interval', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--split', choices=['train', 'val', 'test'], default='train',
                        help='which dataloader\'s dataset to browse (ours; mmseg: train)')
    parser.add_argument('--max-images', type=int, default=None,
                        help='stop after this many images (ours)')
    parser.add_argument('--format', choices=['png', 'pdf', 'svg'], default='png',
                        help='figure file format (ours)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value (xxx=yyy format)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    apply_experiment_tasks(cfg)  # the top-level tasks, after --cfg-options
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset = DATASETS.build(cfg[f'{args.split}_dataloader'].dataset)
    vis_cfg = dict(cfg.visualizer)
    vis_cfg.update(name='browse_dataset', vis_backends=None)
    vis_cfg.pop('save_dir', None)
    visualizer = VISUALIZERS.build(vis_cfg)
    visualizer.dataset_meta = dataset.metainfo
    if args.output_dir:
        mkdir_or_exist(args.output_dir)
    total = len(dataset) if args.max_images is None else min(len(dataset), args.max_images)
    progress = ProgressBar(total)
    for index in range(total):
        item = dataset[index]
        image = item['inputs'].permute(1, 2, 0).numpy()[..., [2, 1, 0]]  # BGR -> RGB
        sample = item['data_samples']
        name = osp.splitext(osp.basename(sample.img_path))[0]
        out_file = osp.join(args.output_dir, f'{name}.{args.format}') if args.output_dir else None
        visualizer.add_datasample(name, image.copy(), sample, draw_gt=True, draw_pred=False,
                                  show=not args.not_show, wait_time=args.show_interval,
                                  out_file=out_file)
        progress.update()


if __name__ == '__main__':
    main()
