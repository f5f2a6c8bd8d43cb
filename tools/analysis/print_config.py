"""Print the whole config (and with ``--graph`` the model) of an mmase experiment (mmase's
version of mmseg's ``tools/misc/print_config.py``: same flags; ``--dump`` names the file
instead of mmseg's fixed ``example.py``).

Example::

    python tools/analysis/print_config.py \\
        configs/toy/ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py --graph
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config, DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a clone
import mmase  # noqa: E402,F401
from mmase.engine.experiment_tasks import apply_experiment_tasks  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Print the whole config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--graph', action='store_true', help='print the model\'s graph')
    parser.add_argument('--dump', metavar='FILE', help='also write the resolved config there')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value (xxx=yyy format)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    apply_experiment_tasks(cfg)  # the top-level tasks, after --cfg-options
    print(f'Config:\n{cfg.pretty_text}')
    if args.dump:
        cfg.dump(args.dump)
    if args.graph:
        from mmase.apis import init_model
        model = init_model(cfg, None, device='cpu')
        print(f'Model graph:\n{model}')


if __name__ == '__main__':
    main()
