"""Score the best *constant* prediction of every task with a config's evaluator.

The floor a trained model must clear: per task, the constant is estimated on the training split
(majority class for segmentation tasks, foreground rate for binary maps, mean unit normal,
mean depth) and predicted for every validation pixel; the config's ``test_evaluator`` scores it.

Example::

    python tools/analysis/constant_baseline.py \
        configs/toy/ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py --json out.json
"""
import argparse
import copy
import json
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import mmase  # noqa: E402,F401
from mmase.engine.experiment_tasks import apply_experiment_tasks  # noqa: E402
from mmase.tasks import TASK_SPECS  # noqa: E402
from mmseg.registry import DATASETS  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Metrics of constant predictions')
    parser.add_argument('config')
    parser.add_argument('--json', help='also write the metrics to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def estimate_constants(dataset, tasks):
    """Per-task constant from every sample of ``dataset`` (ground truth at full size)."""
    sums = {t: None for t in tasks}
    for idx in range(len(dataset)):
        sample = dataset[idx]['data_samples']
        for task in tasks:
            spec = TASK_SPECS[task]
            gt = getattr(sample, spec.gt_field).data.double()
            if spec.kind == 'segmentation':
                labels = gt[gt != spec.ignore_value].long()
                counts = torch.bincount(labels, minlength=256)[:256]
                sums[task] = counts if sums[task] is None else sums[task] + counts
            elif spec.kind == 'binary':
                valid = gt != spec.ignore_value
                add = torch.stack([gt[valid].sum(), valid.sum().double()])
                sums[task] = add if sums[task] is None else sums[task] + add
            elif spec.kind == 'normals':
                add = gt.flatten(1).sum(dim=1)
                sums[task] = add if sums[task] is None else sums[task] + add
            else:
                valid = gt > 0
                add = torch.stack([gt[valid].sum(), valid.sum().double()])
                sums[task] = add if sums[task] is None else sums[task] + add
    constants = {}
    for task in tasks:
        kind, total = TASK_SPECS[task].kind, sums[task]
        if kind == 'segmentation':
            constants[task] = int(total.argmax())
        elif kind == 'normals':
            constants[task] = torch.nn.functional.normalize(total, dim=0).tolist()
        else:
            constants[task] = float(total[0] / total[1].clamp(min=1))
    return constants


def constant_prediction(spec, value, shape):
    """A ``pred_<field>`` tensor of ``shape`` (H, W) holding ``value``."""
    h, w = shape
    if spec.kind == 'segmentation':
        return torch.full((1, h, w), value, dtype=torch.long)
    if spec.kind == 'normals':
        return torch.tensor(value, dtype=torch.float32).view(3, 1, 1).expand(3, h, w).clone()
    return torch.full((1, h, w), value, dtype=torch.float32)


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    apply_experiment_tasks(cfg)  # the top-level tasks, after --cfg-options
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    val_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    train_cfg = copy.deepcopy(val_cfg)  # val pipeline (full-size gt) over the training split
    train_cfg.update(ann_file=cfg.train_dataloader.dataset.ann_file, test_mode=True)
    tasks = tuple(val_cfg.tasks)
    constants = estimate_constants(DATASETS.build(train_cfg), tasks)
    val_set = DATASETS.build(val_cfg)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = val_set.metainfo
    for idx in range(len(val_set)):
        sample = val_set[idx]['data_samples']
        for task in tasks:
            spec = TASK_SPECS[task]
            shape = getattr(sample, spec.gt_field).shape
            sample.set_field(PixelData(data=constant_prediction(spec, constants[task], shape)),
                             spec.pred_field)
        evaluator.process(data_samples=[sample])
    metrics = evaluator.evaluate(len(val_set))
    print('constants:', json.dumps(constants))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(constants=constants, metrics={k: float(v) for k, v in metrics.items()}),
                      f, indent=2)


if __name__ == '__main__':
    main()
