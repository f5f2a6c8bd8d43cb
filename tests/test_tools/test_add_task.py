"""tools/add_task.py: the probe that picks the old task a new task's router starts from.

A tiny four-task toy run (tools/train.py) is the trained model; the tool probes the edge task
(an mmengine Runner run of 2 iterations with the old tasks frozen), records routing on 2 val
images and writes the similarity row and the resolved config."""
import hashlib
import json
import os.path as osp

import pytest
from mmengine.config import Config
from tool_helpers import ROOT, TINY, run

ADDITION = osp.join(ROOT, 'configs', 'task_addition')
FOUR_TASKS = osp.join(ADDITION, 'ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-4tasks.py')
ADD_EDGE = osp.join(ADDITION, 'add-edge-frozen_ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py')
OLD_TASKS = ['semseg', 'human_parts', 'sal', 'normals']


@pytest.fixture(scope='module')
def four_task_checkpoint(tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('four_tasks'))
    run(['tools/train.py', FOUR_TASKS, '--work-dir', work_dir, '--cfg-options'] + TINY)
    return osp.join(work_dir, 'iter_4.pth')


def _sha(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def test_add_task_picks_the_most_similar_old_task(four_task_checkpoint, tmp_path):
    before = _sha(four_task_checkpoint)
    out = tmp_path / 'resolved'
    run(['tools/add_task.py', ADD_EDGE, '--checkpoint', four_task_checkpoint, '--out', str(out),
         '--probe-iters', '2', '--max-samples', '2', '--cfg-options'] + TINY)

    result = json.loads((out / 'router_similarity.json').read_text())
    assert result['checkpoint_tasks'] == OLD_TASKS
    row = result['tasks']['edge']['similarity']
    assert sorted(row) == sorted(OLD_TASKS)
    assert all(-1.0 - 1e-6 <= v <= 1.0 + 1e-6 for v in row.values()), row
    chosen = result['tasks']['edge']['most_similar']
    assert chosen == max(row, key=row.get)
    assert result['layers'], 'the similarity must be measured over routed layers'

    resolved = Config.fromfile(str(out / osp.basename(ADD_EDGE)))
    assert dict(resolved.model.task_addition.router_init) == {'edge': chosen}
    assert resolved.model.task_addition.checkpoint == four_task_checkpoint
    assert resolved.model.backbone.arch.num_layers == 2  # --cfg-options kept
    # the probe ran through the Runner in its own folder and left the checkpoint alone
    assert (out / 'probe').is_dir() and any((out / 'probe').rglob('*.log'))
    assert not list((out / 'probe').rglob('*.pth'))
    assert _sha(four_task_checkpoint) == before


def test_add_task_refuses_a_config_without_task_addition(tmp_path):
    proc = run(['tools/add_task.py', FOUR_TASKS, '--out', str(tmp_path / 'out')], check=False)
    assert proc.returncode != 0
    assert 'model.task_addition is not set' in proc.stderr
    assert not (tmp_path / 'out').exists()
