"""MultiTaskMetric: process + compute over fake SegDataSamples, Δm, protocols and errors."""
import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.structures import PixelData
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample

from mmase.evaluation import MultiTaskMetric
from mmase.tasks import TASK_SPECS

TASKS = ('semseg', 'human_parts', 'sal', 'normals', 'edge', 'depth')
META = dict(task_classes=dict(semseg=('background', 'a', 'b'), human_parts=('bg', 'head', 'torso')))
FIELDS = {task: TASK_SPECS[task].field for task in TASKS}


def normals_pair():
    gt, pred = np.zeros((3, 2, 2)), np.zeros((3, 2, 2))
    gt[:, 0, 0], pred[:, 0, 0] = (0, 0, 1), (0, 0, 1)  # 0 deg
    gt[:, 0, 1], pred[:, 0, 1] = (0, 0, 1), (1, 0, 1)  # 45 deg
    gt[:, 1, 0], pred[:, 1, 0] = (1, 0, 0), (0, 1, 0)  # 90 deg
    return pred, gt


def edge_pair(shifted: bool):
    gt = np.zeros((8, 8))
    gt[1:7, 3] = 1
    pred = np.zeros((8, 8))
    if shifted:
        pred[1:4, 3] = 0.9
        pred[4:7, 5] = 0.5
    return pred, gt


def sample(img_id, maps):
    """A SegDataSample with gt_/pred_ PixelData for every task in ``maps`` (task -> (pred, gt))."""
    data_sample = SegDataSample(metainfo=dict(img_path=f'data/JPEGImages/{img_id}.jpg',
                                              img_id=img_id, tasks=TASKS))
    for task, (pred, gt) in maps.items():
        pred, gt = np.asarray(pred), np.asarray(gt)
        if pred.ndim == 2:
            pred, gt = pred[None], gt[None]
        kind = TASK_SPECS[task].kind
        gt_tensor = torch.from_numpy(gt)
        gt_tensor = gt_tensor.float() if TASK_SPECS[task].is_float else gt_tensor.long()
        pred_tensor = torch.from_numpy(pred)
        pred_tensor = pred_tensor.long() if kind == 'segmentation' else pred_tensor.float()
        data_sample.set_field(PixelData(data=gt_tensor), f'gt_{FIELDS[task]}')
        data_sample.set_field(PixelData(data=pred_tensor), f'pred_{FIELDS[task]}')
    return data_sample


def fake_samples():
    """Two samples whose expected metrics are hand-computed in the meters' tests."""
    normals_pred, normals_gt = normals_pair()
    first = sample('2008_000001', dict(
        semseg=([[0, 1], [1, 2]], [[0, 1], [2, 255]]),
        human_parts=([[1, 1], [1, 1]], [[0, 0], [0, 255]]),  # no part: skipped
        sal=([[0.8, 0.28], [0.1, 0.1]], [[1, 0], [0, 0]]),
        normals=(normals_pred, normals_gt),
        edge=edge_pair(shifted=True),
        depth=([[1.5, 2.0], [9.0, 3.0]], [[1.0, 2.0], [0.0, 4.0]]),
    ))
    second = sample('2008_000002', dict(
        semseg=([[1, 0], [2, 2]], [[1, 1], [2, 2]]),
        human_parts=([[0, 1], [2, 2]], [[0, 1], [1, 2]]),
        sal=([[0.58, 0.1], [0.68, 0.1]], [[1, 1], [0, 0]]),
        normals=(np.ones((3, 2, 2)), np.zeros((3, 2, 2))),  # no valid normal: skipped
        edge=edge_pair(shifted=False),  # not in the edge id list: skipped
        depth=(np.ones((2, 2)), np.zeros((2, 2))),  # no valid depth: skipped
    ))
    return [first, second]


EXPECTED = {
    'semseg/mIoU': (1 / 2 + 1 / 2 + 2 / 3) / 3 * 100,
    'human_parts/mIoU': (1 + 1 / 2 + 1 / 2) / 3 * 100,
    'sal/maxF': 1.3 * (2 / 3) ** 2 / (0.3 * 2 / 3 + 2 / 3) * 100,  # invpt, t = 0.60
    'sal/maxF_atrc': 1.3 * (1 / 3) / (0.3 + 1 / 3) * 100,  # P = 1, R = 1/3
    'sal/mIoU': (1 + 1 / 3) / 2 * 100,  # ASTMT / MTLoRA meter (test_saliency_meter)
    'sal/mIoU_pooled': (2 / 4 + 4 / 6) / 2 * 100,
    'normals/mErr': 45.0,
    'edge/odsF': 200 / 3,  # one-to-one matching: test_edge_meter.test_partial_match_by_hand
    'depth/rmse': np.sqrt(1.25 / 3),
    'depth/abs_rel': 0.25,
    'depth/delta1': 100 / 3,
}
# the edge loss over the 64 pixels of the first edge image: 3 edge pixels at 0.9, 3 edge pixels at 0
# (log clamped at -100), 3 background pixels at 0.5, the rest background at 0
EXPECTED['edge/loss'] = (3 * -0.95 * np.log(0.9) + 3 * 0.95 * 100 + 3 * -0.05 * np.log(0.5)) / 64
STL = dict(semseg=50.0, human_parts=60.0, sal=60.0, normals=50.0, edge=100.0, depth=0.5)


@pytest.fixture
def edge_ids(tmp_path):
    path = tmp_path / 'test_new.txt'
    path.write_text('2008_000001\n2008_000003\n\n')
    return str(path)


def build(edge_ids, **kwargs):
    cfg = dict(type='MultiTaskMetric', tasks=TASKS, edge_tolerance=0.1, edge_eval_ids=edge_ids)
    cfg.update(kwargs)
    metric = METRICS.build(cfg)
    metric.dataset_meta = META
    return metric


def test_process_and_compute_all_tasks(edge_ids, capsys):
    # a new current logger, printing to the captured stdout
    MMLogger.get_instance('mmase_test_multitask_metric')
    metric = build(edge_ids, stl_reference=STL)
    assert isinstance(metric, MultiTaskMetric)
    # mmengine's Evaluator hands the metric dicts (BaseDataElement.to_dict()), in two batches
    samples = [s.to_dict() for s in fake_samples()]
    metric.process({}, samples[:1])
    metric.process({}, samples[1:])
    assert len(metric.results) == 2
    assert metric.results[1]['edge'] is None and metric.results[0]['human_parts'] is None
    metrics = metric.evaluate(2)
    for key, value in EXPECTED.items():
        assert metrics[key] == pytest.approx(value), key
    deltas = dict(
        semseg=(EXPECTED['semseg/mIoU'] - 50) / 50 * 100,
        human_parts=(EXPECTED['human_parts/mIoU'] - 60) / 60 * 100,
        sal=(EXPECTED['sal/maxF'] - 60) / 60 * 100,
        normals=-(45.0 - 50) / 50 * 100,
        edge=(EXPECTED['edge/odsF'] - 100) / 100 * 100,
        depth=-(EXPECTED['depth/rmse'] - 0.5) / 0.5 * 100,
    )
    for task, delta in deltas.items():
        assert metrics[f'multitask/delta_{task}'] == pytest.approx(delta), task
    assert metrics['multitask/delta_m'] == pytest.approx(np.mean(list(deltas.values())))
    assert all(isinstance(v, float) for v in metrics.values())
    log = capsys.readouterr().out
    assert 'multitask/delta_m' in log and 'edge/odsF' in log and "protocol 'invpt'" in log


def test_samples_as_data_elements_and_the_astmt_protocol(edge_ids):
    metric = build(edge_ids, protocol='astmt', tasks=('sal', 'normals', 'edge'))
    metric.process({}, fake_samples())  # SegDataSample objects work too
    metrics = metric.evaluate(2)
    assert set(metrics) == {
        'sal/maxF', 'sal/mIoU', 'sal/mIoU_pooled', 'normals/mErr', 'normals/median', 'normals/rmse',
        'normals/within11.25', 'normals/within22.5', 'normals/within30', 'edge/odsF', 'edge/loss'}
    assert metrics['normals/rmse'] == pytest.approx(np.sqrt((45**2 + 90**2) / 3))
    assert metrics['normals/within11.25'] == pytest.approx(100 / 3)
    assert metrics['sal/maxF'] == pytest.approx(75.0)  # hand-computed in test_saliency_meter
    assert 'multitask/delta_m' not in metrics


def test_atrc_protocol_and_explicit_num_classes(edge_ids):
    metric = METRICS.build(dict(type='MultiTaskMetric', tasks=('semseg', 'sal'), protocol='atrc',
                                num_classes=dict(semseg=3)))
    metric.process({}, [s.to_dict() for s in fake_samples()])  # no dataset_meta needed
    metrics = metric.evaluate(2)
    assert metrics['sal/maxF'] == pytest.approx(EXPECTED['sal/maxF_atrc'])
    assert 'sal/maxF_atrc' not in metrics
    assert metrics['semseg/mIoU'] == pytest.approx(EXPECTED['semseg/mIoU'])


def test_edge_ids_fall_back_to_the_image_path_stem(edge_ids):
    metric = build(edge_ids, tasks=('edge', ))
    samples = []
    for data_sample in fake_samples():
        as_dict = data_sample.to_dict()
        del as_dict['img_id']
        samples.append(as_dict)
    metric.process({}, samples)
    assert [r['edge'] is None for r in metric.results] == [False, True]


def test_build_errors(edge_ids, tmp_path):
    with pytest.raises(ValueError, match="stl_reference has no value for task 'edge'"):
        MultiTaskMetric(tasks=('semseg', 'edge'), stl_reference=dict(semseg=50.0))
    with pytest.raises(ValueError, match=r"stl_reference\['semseg'\] must be a finite non-zero"):
        MultiTaskMetric(tasks=('semseg', ), stl_reference=dict(semseg=0))
    with pytest.raises(ValueError, match="MultiTaskMetric.stl_reference: unknown task 'albedo'"):
        MultiTaskMetric(tasks=('semseg', ), stl_reference=dict(semseg=50.0, albedo=1.0))
    with pytest.raises(ValueError, match="MultiTaskMetric.tasks: unknown task 'albedo'"):
        MultiTaskMetric(tasks=('albedo', ))
    with pytest.raises(ValueError, match="MultiTaskMetric.protocol='mti'"):
        MultiTaskMetric(tasks=('sal', ), protocol='mti')
    with pytest.raises(ValueError, match=r"num_classes\['sal'\]: task 'sal' has no classes"):
        MultiTaskMetric(tasks=('sal', ), num_classes=dict(sal=2))
    with pytest.raises(FileNotFoundError, match='edge_eval_ids: no such file'):
        MultiTaskMetric(tasks=('edge', ), edge_eval_ids=str(tmp_path / 'missing.txt'))
    with pytest.raises(ValueError, match='"edge" is not in tasks'):
        MultiTaskMetric(tasks=('sal', ), edge_eval_ids=edge_ids)
    with pytest.raises(ValueError, match='tolerance must be > 0'):
        MultiTaskMetric(tasks=('edge', ), edge_tolerance=-1)


def test_process_errors():
    samples = fake_samples()
    metric = MultiTaskMetric(tasks=('semseg', ))
    with pytest.raises(ValueError, match="number of classes of task 'semseg' unknown"):
        metric.process({}, samples)
    metric = MultiTaskMetric(tasks=('sal', ))
    del samples[0].pred_sal
    with pytest.raises(KeyError, match="has no 'pred_sal' for task 'sal'"):
        metric.process({}, samples[:1])
    bad = fake_samples()[0].to_dict()
    bad['pred_sal'] = dict(data=torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match=r"task 'sal'.*2008_000001.jpg.*must both be \(H, W\)"):
        metric.process({}, [bad])
    bad['pred_sal'] = dict(data=torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match=r"2008_000001.jpg.*pred_sal must have shape \(1, H, W\)"):
        metric.process({}, [bad])
    bad['pred_sal'] = dict(data=torch.full((1, 2, 2), 3.0))  # logits, not probabilities
    with pytest.raises(ValueError, match='probabilities'):
        metric.process({}, [bad])
    bad['pred_sal'] = [0.5]
    with pytest.raises(TypeError, match='must hold a tensor'):
        metric.process({}, [bad])


def test_compute_error_when_every_sample_is_skipped():
    metric = MultiTaskMetric(tasks=('human_parts', ), num_classes=dict(human_parts=3))
    metric.process({}, fake_samples()[:1])  # the first sample has no part
    with pytest.raises(ValueError, match="no sample counted for task 'human_parts' out of 1"):
        metric.compute_metrics(metric.results)


def test_half_precision_predictions_are_read_as_float32():
    metric = MultiTaskMetric(tasks=('sal', 'normals'), protocol='atrc')
    samples = [s.to_dict() for s in fake_samples()]
    for data_sample in samples:
        data_sample['pred_sal']['data'] = data_sample['pred_sal']['data'].bfloat16()
        data_sample['pred_normals']['data'] = data_sample['pred_normals']['data'].half()
    metric.process({}, samples)
    metrics = metric.evaluate(2)
    # 0.28, 0.58, 0.68 are not exact in bfloat16, but no threshold lies between them and their
    # rounded values, so the hand-computed maxF holds
    assert metrics['sal/maxF'] == pytest.approx(EXPECTED['sal/maxF_atrc'])
    assert metrics['normals/mErr'] == pytest.approx(45.0, abs=1e-3)


def test_worker_processes_give_the_same_metrics(edge_ids):
    metric = build(edge_ids, stl_reference=STL, num_workers=2)
    samples = [s.to_dict() for s in fake_samples()]
    metric.process({}, samples[:1])
    metric.process({}, samples[1:])
    assert metric._pool is not None and len(metric._pending) + len(metric.results) == 2
    metrics = metric.evaluate(2)
    for key, value in EXPECTED.items():
        assert metrics[key] == pytest.approx(value), key
    assert metric._pool is None and not metric._pending
    # a second evaluation starts a new pool and counts only its own samples
    metric.process({}, samples)
    assert metric.evaluate(2) == metrics


def test_worker_errors_name_the_sample_and_stop_the_pool(edge_ids):
    metric = build(None, tasks=('sal', ), num_workers=1)
    bad = fake_samples()[0].to_dict()
    bad['pred_sal'] = dict(data=torch.full((1, 2, 2), 3.0))  # logits, not probabilities
    metric.process({}, [bad])
    with pytest.raises(ValueError, match=r"task 'sal'.*2008_000001.jpg.*probabilities"):
        metric.evaluate(1)
    assert metric._pool is None and not metric._pending
    for value in (-1, 1.5, True):
        with pytest.raises(ValueError, match='num_workers must be an int >= 0'):
            MultiTaskMetric(tasks=('sal', ), num_workers=value)


def test_main_metrics_choose_the_delta_m_metric_and_its_direction(edge_ids, capsys):
    MMLogger.get_instance('mmase_test_main_metrics')
    # ASE's ablation choice: saliency mIoU, edge balanced BCE (lower is better)
    stl = dict(STL, sal=50.0, edge=0.5 * EXPECTED['edge/loss'])
    metric = build(edge_ids, stl_reference=stl, main_metrics=dict(sal='mIoU', edge='loss'))
    assert metric.main_metrics == dict(semseg='mIoU', human_parts='mIoU', sal='mIoU',
                                       normals='mErr', edge='loss', depth='rmse')
    metric.process({}, [s.to_dict() for s in fake_samples()])
    metrics = metric.evaluate(2)
    assert metrics['multitask/delta_sal'] == pytest.approx((EXPECTED['sal/mIoU'] - 50) / 50 * 100)
    # twice the reference's loss: -100 %
    assert metrics['multitask/delta_edge'] == pytest.approx(-100.0)
    log = capsys.readouterr().out
    # the summary in ASE's Table 1 order, with directions
    summary = log[log.index('MultiTaskMetric main metrics'):]
    assert summary.index('semseg/mIoU ↑') < summary.index('normals/mErr ↓') \
        < summary.index('human_parts/mIoU ↑') < summary.index('sal/mIoU ↑') \
        < summary.index('edge/loss ↓') < summary.index('depth/rmse ↓')
    assert f"{metrics['multitask/delta_m']:+.2f}" in summary and '-100.00' in summary


def test_a_reference_with_metrics_sets_the_main_metrics(edge_ids):
    reference = dict(source='my table', metrics=dict(sal='mIoU', edge='loss'), sal=50.0, edge=0.5)
    metric = build(edge_ids, tasks=('sal', 'edge'), stl_reference=reference)
    assert metric.main_metrics == dict(sal='mIoU', edge='loss')
    assert metric.stl_reference == dict(sal=50.0, edge=0.5)
    with pytest.raises(ValueError, match=r"main_metrics\['edge'\]='odsF' but MultiTaskMetric."
                       r"stl_reference \(my table\).metrics\['edge'\]='loss'"):
        build(edge_ids, tasks=('sal', 'edge'), stl_reference=reference,
              main_metrics=dict(edge='odsF'))
    with pytest.raises(ValueError, match=r"stl_reference \(my table\) has no value for task "
                       r"'semseg'"):
        build(edge_ids, tasks=('sal', 'semseg'), stl_reference=reference)


def test_main_metric_the_protocol_does_not_compute():
    with pytest.raises(ValueError, match=r"main_metrics\['sal'\]='maxF_atrc': protocol 'astmt' "
                       r"does not compute sal/maxF_atrc; it computes \['maxF', 'mIoU', "
                       r"'mIoU_pooled'\]"):
        MultiTaskMetric(tasks=('sal', ), protocol='astmt', main_metrics=dict(sal='maxF_atrc'))
    with pytest.raises(ValueError, match=r"main_metrics\['normals'\]='median': protocol 'invpt'"):
        MultiTaskMetric(tasks=('normals', ), main_metrics=dict(normals='median'))
    with pytest.raises(ValueError, match="main_metrics: unknown task 'albedo'"):
        MultiTaskMetric(tasks=('sal', ), main_metrics=dict(albedo='mIoU'))
    # a task outside `tasks` is allowed (reference files name all five)
    assert MultiTaskMetric(tasks=('sal', ), main_metrics=dict(sal='mIoU', edge='loss')
                           ).main_metrics == dict(sal='mIoU')


@pytest.mark.parametrize('protocol', ['invpt', 'atrc', 'astmt'])
def test_task_metric_names_list_what_the_meters_return(edge_ids, protocol):
    from mmase.evaluation.metrics import task_metric_names
    metric = build(edge_ids, protocol=protocol)
    metric.process({}, fake_samples())
    metrics = metric.evaluate(2)
    for task in TASKS:
        returned = [key.split('/', 1)[1] for key in metrics if key.startswith(f'{task}/')]
        assert sorted(returned) == sorted(task_metric_names(task, protocol)), task


def test_the_shipped_ase_reference_is_usable_as_stl_reference():
    import os.path as osp

    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    cfg = Config.fromfile(osp.join(root, 'configs/_base_/stl_reference/pascal_mt_resnet18_ase.py'))
    tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
    metric = METRICS.build(dict(type='MultiTaskMetric', tasks=tasks, protocol='astmt',
                                stl_reference=cfg.stl_reference))
    assert metric.main_metrics == dict(semseg='mIoU', human_parts='mIoU', sal='mIoU',
                                       normals='mErr', edge='odsF')
    assert metric.stl_reference['sal'] == 63.2
