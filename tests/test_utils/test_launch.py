"""mmase.utils.launch: env_cfg keys mmengine never reads are errors; multi-process runs get
SyncRankBuffersHook; ranks die with their launcher (mmase.utils.launcher_death)."""
import os
import signal
import subprocess
import sys
import time

import pytest
from mmengine.config import Config

from mmase.utils.launch import add_buffer_sync, check_env_cfg


def test_unknown_env_cfg_keys_are_named():
    check_env_cfg(Config(dict(env_cfg=dict(
        cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
        dist_cfg=dict(backend='gloo', port=29500, timeout=1800), resource_limit=4096))))
    with pytest.raises(ValueError, match=r"env_cfg\.dist_cfg\.prt: unknown key .*did you mean "
                                         r"'port'\?"):
        check_env_cfg(Config(dict(env_cfg=dict(dist_cfg=dict(backend='gloo', prt=29501)))))
    with pytest.raises(ValueError, match=r"env_cfg\.mp_cfg\.opencv_threads: .*'opencv_num_"):
        check_env_cfg(Config(dict(env_cfg=dict(mp_cfg=dict(opencv_threads=0)))))
    with pytest.raises(ValueError, match=r'env_cfg\.cudnn_benchmrk: unknown key'):
        check_env_cfg(Config(dict(env_cfg=dict(cudnn_benchmrk=True))))


def test_buffer_sync_hook_added_once():
    cfg = Config(dict(custom_hooks=[dict(type='SaveMetricsHook')]))
    assert add_buffer_sync(cfg) and not add_buffer_sync(cfg)
    assert [h['type'] for h in cfg.custom_hooks] == ['SaveMetricsHook', 'SyncRankBuffersHook']


# A launcher (the parent) starting two ranks (children), one calling exit_with_launcher. The
# children load launcher_death.py alone (not the whole package: seconds less per process).
LAUNCHER = '''
import subprocess, sys, time
RANK = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location('launch', sys.argv[2])
launch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launch)
launch.exit_with_launcher() if sys.argv[1] == 'linked' else None
print('ready', flush=True)
time.sleep(60)
"""
ranks = [subprocess.Popen([sys.executable, '-c', RANK, kind, sys.argv[1]], stdout=subprocess.PIPE,
                          text=True) for kind in ('linked', 'unlinked')]
for rank in ranks:
    assert rank.stdout.readline().strip() == 'ready'
print(' '.join(str(rank.pid) for rank in ranks), flush=True)
time.sleep(60)
'''


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f'/proc/{pid}/stat') as f:  # a zombie waits for its new parent's wait()
        return f.read().split(') ')[1][0] != 'Z'


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='prctl(PR_SET_PDEATHSIG)')
def test_rank_exits_when_its_launcher_is_killed():
    from mmase.utils import launcher_death
    launcher = subprocess.Popen([sys.executable, '-c', LAUNCHER, launcher_death.__file__],
                                stdout=subprocess.PIPE, text=True)
    linked, unlinked = map(int, launcher.stdout.readline().split())
    try:
        assert _alive(linked) and _alive(unlinked)
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        deadline = time.time() + 10
        while _alive(linked) and time.time() < deadline:
            time.sleep(0.05)
        assert not _alive(linked)
        assert _alive(unlinked)  # without the call a rank trains on, orphaned
    finally:
        for pid in (linked, unlinked):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
