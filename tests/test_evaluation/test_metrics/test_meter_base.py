"""The meter base module: no import circle among the metric modules, shared checks in one place."""
import ast
import os.path as osp

import numpy as np
import pytest

import mmase.evaluation.metrics as metrics
from mmase.evaluation.metrics import meter_base, task_metrics

METRICS_DIR = osp.dirname(metrics.__file__)
METERS = ('depth_meter', 'edge_meter', 'normals_meter', 'pixel_error_meter', 'saliency_meter',
          'segmentation_meter')


def _local_imports(module: str) -> set:
    """Sibling modules that ``module`` imports (``from .x import ...`` / ``from . import x``)."""
    tree = ast.parse(open(osp.join(METRICS_DIR, module + '.py')).read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module)
            else:
                found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize('meter', METERS)
def test_meters_import_the_base_not_the_builder(meter):
    imported = _local_imports(meter)
    assert 'task_metrics' not in imported
    assert 'meter_base' in imported
    assert not imported & set(METERS), f'{meter} borrows from another meter: {imported}'


def test_base_imports_no_sibling_and_old_names_still_import():
    assert _local_imports('meter_base') == set()
    assert task_metrics.TaskMeter is meter_base.TaskMeter
    assert task_metrics.TASK_METERS is meter_base.TASK_METERS
    from mmase.evaluation.metrics.saliency_meter import check_probabilities
    assert check_probabilities is meter_base.check_probabilities


def test_shared_checks_reject_bad_input():
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        meter_base.check_probabilities(np.array([0.5, np.nan]))
    with pytest.raises(ValueError, match=r'found \[2\]'):
        meter_base.check_binary_labels(np.array([0, 1, 2, 255]), 255)
    meter_base.check_binary_labels(np.array([0, 1, 255]), 255)
    np.testing.assert_array_equal(meter_base.safe_divide([1, 2], [0, 4]), [0.0, 0.5])
