"""Train a multi-task model with mmengine's Runner (flags as mmseg's tools/train.py)."""
import argparse
import logging
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner, find_latest_checkpoint

try:
    import mmase  # noqa: F401  (the installed mmase: a clone's copy never shadows it)
except ImportError:  # an uninstalled clone: its own package
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    import mmase  # noqa: F401
from mmase.apis.mmseg_tool import packaged_path  # noqa: E402
from mmase.engine import check_checkpoint, check_config_checkpoints  # noqa: E402
from mmase.engine.config_check import check_config, check_output_dirs  # noqa: E402
from mmase.engine.experiment_tasks import apply_experiment_tasks  # noqa: E402
from mmase.engine.strict_loading import require_matching_checkpoint  # noqa: E402
from mmase.utils import configure_device, default_collect_dirs, exit_distributed_rank  # noqa: E402
from mmase.utils.work_dir_lock import hold_work_dir_lock  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Train a multi-task dense prediction model')
    parser.add_argument('config', help='train config file path, or mmase::DIR/FILE.py (a config '
                        'the installed package ships)')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', action='store_true', default=False,
                        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument('--allow-partial-checkpoint', action='store_true', default=False,
                        help='with --resume: load a checkpoint whose keys or shapes do not match '
                             'the model (the matching part; default: an error)')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training')
    parser.add_argument('--tensorboard', action='store_true', default=False,
                        help='also log scalars to TensorBoard (<work_dir>/<timestamp>/vis_data; '
                        'pip install -e ".[tensorboard]")')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value (xxx=yyy format)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def add_tensorboard(cfg) -> None:
    """Add ``TensorboardVisBackend`` beside the configured backends (the local one stays)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise SystemExit('--tensorboard needs the tensorboard package: '
                         'pip install -e ".[tensorboard]" (or pip install tensorboard)') from None
    backends = list(cfg.visualizer.get('vis_backends') or [])
    if not any(b.get('type') == 'TensorboardVisBackend' for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    cfg.visualizer.vis_backends = backends


def main():
    args = parse_args()
    cfg = Config.fromfile(packaged_path(args.config, 'configs'))  # a file or mmase::DIR/X.py
    file_keys = list(cfg.keys())
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    apply_experiment_tasks(cfg)  # the top-level tasks, after --cfg-options
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.', logger='current',
                      level=logging.WARNING)
        else:
            assert optim_wrapper == 'OptimWrapper', (
                f'`--amp` is only supported when the optimizer wrapper type is `OptimWrapper`, '
                f'but got {optim_wrapper}.')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.tensorboard:
        add_tensorboard(cfg)
    cfg.resume = args.resume
    check_config(cfg, args.cfg_options, file_keys)  # typos, negative loss weights
    checkpoint = cfg.get('load_from') or (
        find_latest_checkpoint(cfg.work_dir) if args.resume else None)
    if checkpoint:
        check_checkpoint(checkpoint)  # missing, damaged or crafted: refused before any build
    check_config_checkpoints(cfg)  # model.backbone.pretrained, init_cfg Pretrained
    check_output_dirs(cfg, training=True)
    hold_work_dir_lock(cfg.work_dir)  # refused while a live run (pid, host named) holds it
    if args.launcher != 'none':
        default_collect_dirs(cfg)
    configure_device(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    if args.resume and not args.allow_partial_checkpoint:
        require_matching_checkpoint(runner)
    runner.train()
    exit_distributed_rank()  # explicit teardown: no abort of a rank at interpreter exit


if __name__ == '__main__':
    main()
