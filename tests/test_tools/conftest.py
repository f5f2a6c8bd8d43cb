"""Fixtures shared by the tool tests: one tiny toy training run for the whole session.

``toy_run`` trains the README's toy config (ASE 16/3/1/4, five PASCAL-Context tasks) at tiny
size once, through ``tools/train.py`` (2 ViT blocks, 4 iterations, a checkpoint and a
validation at the end: see ``tool_helpers.TINY``), and yields what the analysis tools take.
Tests that reuse it must pass ``TINY`` as ``--cfg-options`` again (the architecture is not
in the config file) and must not write into its work dir.
"""
import os.path as osp
from typing import NamedTuple

import pytest
from tool_helpers import TINY, TOY_CONFIG, run


class ToyRun(NamedTuple):
    """A finished tiny training run of the toy config."""
    config: str  #: the config file trained (the toy config, unchanged)
    checkpoint: str  #: ``<work_dir>/iter_4.pth``
    work_dir: str  #: holds the checkpoint, ``metrics_val_iter_4.json`` and the logs
    cfg_options: tuple  #: the ``--cfg-options`` the run used (``TINY``)


@pytest.fixture(scope='session')
def toy_run(tmp_path_factory) -> ToyRun:
    work_dir = str(tmp_path_factory.mktemp('toy_run'))
    run(['tools/train.py', TOY_CONFIG, '--work-dir', work_dir, '--cfg-options'] + TINY)
    checkpoint = osp.join(work_dir, 'iter_4.pth')
    assert osp.isfile(checkpoint), f'tools/train.py wrote no {checkpoint}'
    yield ToyRun(TOY_CONFIG, checkpoint, work_dir, tuple(TINY))
