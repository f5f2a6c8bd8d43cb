"""One training run per work dir: a live holder is named (pid, host), a dead one's lock is stale."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from mmase.utils import work_dir_lock
from mmase.utils.work_dir_lock import (LOCK_NAME, WorkDirLockedError, acquire_work_dir_lock,
                                       release_work_dir_lock)

LOCK_FILE = work_dir_lock.__file__

# Loads work_dir_lock.py alone (not the whole package: seconds less per process).
HOLDER = '''
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location('lock', sys.argv[2])
lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock)
lock.acquire_work_dir_lock(sys.argv[1])
print('held', flush=True)
time.sleep(120)
'''


def test_live_holder_refuses_a_second_run_and_a_dead_one_is_stale(tmp_path):
    work_dir = str(tmp_path / 'work')
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, work_dir, LOCK_FILE],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(WorkDirLockedError,
                           match=rf'work dir {work_dir} is in use by another training run: pid '
                                 rf'{holder.pid} on host {socket.gethostname()} since '):
            acquire_work_dir_lock(work_dir)
    finally:
        holder.send_signal(signal.SIGKILL)  # dies holding it: no clean-up ran
        holder.wait()
    assert json.load(open(os.path.join(work_dir, LOCK_NAME)))['pid'] == holder.pid
    stale = acquire_work_dir_lock(work_dir)
    assert stale['pid'] == holder.pid and stale['host'] == socket.gethostname()
    assert json.load(open(os.path.join(work_dir, LOCK_NAME)))['pid'] == os.getpid()
    release_work_dir_lock(work_dir)
    assert not os.path.exists(os.path.join(work_dir, LOCK_NAME))
    assert acquire_work_dir_lock(work_dir) is None  # a clean release leaves nothing stale
    release_work_dir_lock(work_dir)


def test_clean_exit_releases_the_lock(tmp_path):
    work_dir = str(tmp_path / 'work')
    done = subprocess.run([sys.executable, '-c', HOLDER.replace('time.sleep(120)', ''), work_dir,
                           LOCK_FILE],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not os.path.exists(os.path.join(work_dir, LOCK_NAME))
    start = time.time()
    assert acquire_work_dir_lock(work_dir) is None
    assert time.time() - start < 1
    release_work_dir_lock(work_dir)


def rank_zero_env() -> dict:
    """This process's environment as a single-process run sees it (no rank variables)."""
    env = {k: v for k, v in os.environ.items() if k not in ('RANK', 'SLURM_PROCID')}
    return dict(env, PYTHONWARNINGS='ignore')


def test_train_tool_refuses_the_work_dir_of_a_live_run(tmp_path):
    """tools/train.py (--resume beside a live run) stops before building anything, naming the
    holder."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    config = os.path.join(root, 'configs', 'toy',
                          'ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py')
    work_dir = str(tmp_path / 'work')
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, work_dir, LOCK_FILE],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        second = subprocess.run([sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
                                 '--resume'], cwd=root, capture_output=True, text=True,
                                timeout=300, env=rank_zero_env())
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert second.returncode != 0
    assert f'WorkDirLockedError: work dir {work_dir} is in use by another training run: pid ' \
           f'{holder.pid} on host {socket.gethostname()}' in second.stderr, second.stderr[-2000:]
    assert os.listdir(work_dir) == [LOCK_NAME]  # no log folder, no checkpoint: nothing built
