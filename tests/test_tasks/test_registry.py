"""Task declarations: kinds, the shipped six, bad declarations naming the field."""
import pytest

from mmase.tasks import (TASK_KINDS, TASK_SPECS, declare_tasks, get_task_spec, task_spec_by_gt_field,
                         undeclare_task)


@pytest.fixture(autouse=True)
def clean():
    yield
    for name in ('semseg2', 'pseudo_depth', 'dup'):
        undeclare_task(name)


def test_shipped_tasks_keep_their_contract():
    semseg, normals = get_task_spec('semseg'), get_task_spec('normals')
    assert (semseg.name, semseg.field, semseg.kind, semseg.ignore_value, semseg.lower_is_better,
            semseg.gt_field, semseg.pred_field, semseg.channels, semseg.is_float) == \
        ('semseg', 'sem_seg', 'segmentation', 255, False, 'gt_sem_seg', 'pred_sem_seg', 1, False)
    assert (normals.channels, normals.is_float, normals.flip_sign, normals.lower_is_better) == \
        (3, True, (0, 1), True)
    assert sorted(TASK_SPECS) == sorted(['semseg', 'human_parts', 'sal', 'normals', 'edge',
                                         'depth'])
    assert {t: s.meter['type'] for t, s in TASK_SPECS.items()}['edge'] == 'EdgeMeter'


def test_declared_task_appears_in_the_live_view():
    names = declare_tasks([dict(type='SegmentationTask', name='semseg2', field='sem_seg2',
                                num_classes=3),
                           dict(type='DepthTask', name='pseudo_depth')])
    assert names == ('semseg2', 'pseudo_depth')
    assert 'semseg2' in TASK_SPECS and dict(TASK_SPECS.items())['semseg2'].num_classes == 3
    assert task_spec_by_gt_field('gt_sem_seg2').name == 'semseg2'
    # the same declaration again is no error (every process / component declares it)
    declare_tasks([dict(type='SegmentationTask', name='semseg2', field='sem_seg2',
                        num_classes=3)])


def test_kinds_are_registered():
    assert {'SegmentationTask', 'BinaryTask', 'NormalsTask', 'DepthTask', 'RegressionTask',
            'DenseTask'} <= set(TASK_KINDS.module_dict)


@pytest.mark.parametrize('decls, match', [
    ([dict(type='SegmentationTask', name='dup'), dict(type='DepthTask', name='dup')],
     r"custom_tasks\[1\]: task 'dup' is declared twice \(also custom_tasks\[0\]\)"),
    ([dict(type='FlowTask', name='dup')], r"custom_tasks\[0\]\.type='FlowTask' is not a "
     r'registered task kind'),
    ([dict(name='dup')], r'custom_tasks\[0\]\.type is missing'),
    ([dict(type='SegmentationTask', name='semseg', field='other')],
     r"custom_tasks\[0\]: task 'semseg' is already declared with other settings"),
    ([dict(type='SegmentationTask', name='dup', field='sal')],
     r"custom_tasks\[0\]\.field='sal': task 'sal' uses that field already"),
    ([dict(type='DenseTask', name='dup', main_metric='mae', meter=dict(type='PixelErrorMeter'),
           activation='softmax')], r"activation='softmax' is not one of"),
    ([dict(type='NormalsTask', name='dup', channels=1)], r'custom_tasks\[0\] \(NormalsTask\)'),
    ([dict(type='DenseTask', name='dup', main_metric='mae', meter=dict(type='PixelErrorMeter'),
           annotation=dict(dir='x', decoder='jpg'))], r"annotation\.decoder='jpg'"),
])
def test_bad_declarations_name_the_field(decls, match):
    with pytest.raises(ValueError, match=match):
        declare_tasks(decls)
    assert 'dup' not in TASK_SPECS


def test_unknown_task_lists_the_declared_ones():
    with pytest.raises(ValueError, match=r"model.tasks: unknown task 'flow'"):
        get_task_spec('flow', 'model.tasks')
