"""Tests build modules from configs in mmseg's default scope, as the tools do."""
import warnings

import pytest
from mmengine.registry import DefaultScope

import mmase  # noqa: F401  (registers everything)


@pytest.fixture(autouse=True, scope='session')
def mmseg_default_scope():
    warnings.filterwarnings('ignore', message='.*MultiScaleDeformableAttention.*')
    if DefaultScope.get_current_instance() is None:
        DefaultScope.get_instance('mmase_tests', scope_name='mmseg')
    yield
