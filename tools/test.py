"""Evaluate a multi-task model with mmengine's Runner (flags as mmseg's tools/test.py)."""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

try:
    import mmase  # noqa: F401  (the installed mmase: a clone's copy never shadows it)
except ImportError:  # an uninstalled clone: its own package
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    import mmase  # noqa: F401
from mmase.apis.mmseg_tool import packaged_path  # noqa: E402
from mmase.engine import check_checkpoint, check_config_checkpoints  # noqa: E402
from mmase.engine.config_check import check_config, check_output_dirs  # noqa: E402
from mmase.engine.experiment_tasks import apply_experiment_tasks  # noqa: E402
from mmase.engine.strict_loading import (check_checkpoint_matches,  # noqa: E402
                                         require_matching_checkpoint)
from mmase.utils import configure_device, default_collect_dirs, exit_distributed_rank  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and evaluate) a multi-task model')
    parser.add_argument('config', help='test config file path, or mmase::DIR/FILE.py (a config '
                        'the installed package ships)')
    parser.add_argument('checkpoint', help='checkpoint file, http(s) URL or mmengine backend path')
    parser.add_argument('--work-dir', help='the dir to save the metrics and logs')
    parser.add_argument('--allow-partial-checkpoint', action='store_true', default=False,
                        help='evaluate even if the checkpoint\'s keys or shapes do not match the '
                             'model (the rest stays randomly initialised; default: an error)')
    parser.add_argument('--out', help='a .pkl file: dump every prediction there; a directory: '
                        'write each task\'s prediction as DIR/<task>/<id>.png (class ids; '
                        'probability x 255; normals RGB (n+1)/2*255; depth uint16 mm)')
    parser.add_argument('--tta', action='store_true',
                        help='test-time augmentation: the config\'s tta_pipeline (flips x '
                        'scales) averaged per task by tta_model (MultiTaskTTAModel)')
    parser.add_argument('--save-edges', metavar='DIR',
                        help='also write each image\'s edge probability as DIR/<id>.png (for '
                        'SEISM or tools/analysis/eval_edges.py)')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory where painted images will be saved')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value (xxx=yyy format)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args):
    """Turn on the visualization hook to draw (and save) every test prediction."""
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError('--show / --show-dir need default_hooks.visualization in the config '
                           '(e.g. dict(type="SegVisualizationHook"))')
    hook = default_hooks['visualization']
    hook['draw'] = True
    hook['interval'] = 1
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        visualizer = cfg.visualizer
        visualizer['save_dir'] = args.show_dir
    return cfg


def use_tta(cfg):
    """Swap in the TTA pipeline and wrap the model in ``tta_model`` (mmseg's ``--tta``)."""
    for key in ('tta_model', 'tta_pipeline'):
        if key not in cfg:
            raise RuntimeError(f'--tta needs `{key}` in the config (configs/_base_/'
                               f'default_runtime.py and configs/_base_/datasets/*.py define it)')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model
    return cfg


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
    check_config(cfg, args.cfg_options, file_keys)  # typos, negative loss weights
    check_checkpoint(args.checkpoint)  # missing, damaged or crafted: refused before any build
    check_config_checkpoints(cfg)  # model.backbone.pretrained, init_cfg Pretrained
    out_pickle = bool(args.out) and args.out.endswith(('.pkl', '.pickle'))
    if args.out and not out_pickle and osp.splitext(args.out)[1]:
        raise ValueError(f'--out {args.out}: give a .pkl file or a directory (no suffix)')
    out_dir = args.out and (osp.dirname(osp.abspath(args.out)) if out_pickle else args.out)
    if out_dir and not out_pickle:
        os.makedirs(out_dir, exist_ok=True)
    outputs = [(out_dir, '--out') if args.out else None,
               (args.show_dir, '--show-dir') if args.show_dir else None]
    check_output_dirs(cfg, training=False, extra=[o for o in outputs if o])
    if args.launcher != 'none':
        default_collect_dirs(cfg)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        cfg = use_tta(cfg)
    if args.out is not None and not out_pickle:
        cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
            dict(type='SavePredictionsHook', out_dir=args.out)]
    elif args.out is not None:
        evaluators = cfg.test_evaluator
        evaluators = list(evaluators) if isinstance(evaluators, (list, tuple)) else [evaluators]
        dump = dict(type='DumpResults', out_file_path=args.out)
        for key in ('collect_device', 'collect_dir'):  # gather as the configured metric does
            if evaluators and key in evaluators[0]:
                dump[key] = evaluators[0][key]
        evaluators.append(dump)
        cfg.test_evaluator = evaluators
    if args.save_edges:  # test_evaluator's MultiTaskMetric edge_save_dir
        from mmase.evaluation.metrics.edge_files import set_edge_save_dir
        set_edge_save_dir(cfg, args.save_edges)
    configure_device(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    if not args.allow_partial_checkpoint and args.tta:
        # the TTA wrapper holds the model as .module (mmengine loads into it): check that one
        from mmengine.runner.checkpoint import _load_checkpoint
        check_checkpoint_matches(runner.model.module,
                                 _load_checkpoint(args.checkpoint, map_location='cpu'),
                                 args.checkpoint)
    elif not args.allow_partial_checkpoint:
        require_matching_checkpoint(runner)
    runner.test()
    exit_distributed_rank()  # explicit teardown: no abort of a rank at interpreter exit


if __name__ == '__main__':
    main()
