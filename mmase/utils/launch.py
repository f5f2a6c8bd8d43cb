"""Make mmengine's Runner work on machines without a GPU, single- or multi-process.

mmengine assumes CUDA for distributed runs: it calls ``torch.cuda.set_device`` before creating
the process group and wraps the model in DDP with ``device_ids=[LOCAL_RANK]``. On CPU we create
the gloo process group ourselves (mmengine then skips its own ``init_dist``) and ask for a
``MMDistributedDataParallel`` without device ids. torch has no CPU ``SyncBatchNorm``, so a
multi-process CPU run builds plain BN where the config asks for SyncBN (statistics per process).
"""
import atexit
import difflib
import logging
import os
import subprocess
import sys

import torch
import torch.distributed as dist
from mmengine.logging import print_log

from .launcher_death import exit_with_launcher

#: Norm layer types that only run on GPUs; CPU processes get plain ``BN`` instead.
_SYNC_BN_TYPES = ('SyncBN', 'MMSyncBN')

#: The keys mmengine's ``Runner.setup_env`` reads from ``env_cfg`` (and passes on:
#: ``mp_cfg`` to ``set_multi_processing``, ``dist_cfg`` to ``init_dist`` and
#: ``torch.distributed.init_process_group``; ``port`` is read by the slurm launcher).
ENV_CFG_KEYS = dict(
    env_cfg=('cudnn_benchmark', 'mp_cfg', 'dist_cfg', 'resource_limit'),
    mp_cfg=('mp_start_method', 'opencv_num_threads'),
    dist_cfg=('backend', 'init_backend', 'port', 'timeout', 'init_method', 'world_size', 'rank',
              'store', 'group_name', 'pg_options', 'device_id'))

def check_env_cfg(cfg) -> None:
    """Refuse keys of ``env_cfg``, ``env_cfg.mp_cfg`` and ``env_cfg.dist_cfg`` that mmengine
    never reads (mmengine ignores them silently, e.g. ``dist_cfg.prt=29501``).

    Raises:
        ValueError: naming the field, with the closest known key and the list of known keys.
    """
    env_cfg = cfg.get('env_cfg') or {}
    sections = [('env_cfg', env_cfg)]
    for name in ('mp_cfg', 'dist_cfg'):
        if isinstance(env_cfg.get(name), dict):
            sections.append((name, env_cfg[name]))
    for name, section in sections:
        known = ENV_CFG_KEYS[name]
        for key in section:
            if key in known:
                continue
            close = difflib.get_close_matches(key, known, n=1)
            field = 'env_cfg' if name == 'env_cfg' else f'env_cfg.{name}'
            raise ValueError(f'{field}.{key}: unknown key (mmengine would ignore it)'
                             + (f'; did you mean {close[0]!r}?' if close else '')
                             + f' Known keys: {", ".join(known)}')


def add_buffer_sync(cfg) -> bool:
    """Add ``SyncRankBuffersHook`` to ``cfg.custom_hooks`` (unless there): in a multi-process
    run every rank then validates with the buffers that rank 0 saves. Returns True if added."""
    hooks = list(cfg.get('custom_hooks') or [])
    if any(dict(h).get('type') in ('SyncRankBuffersHook', 'mmseg.SyncRankBuffersHook')
           for h in hooks):
        return False
    hooks.append(dict(type='SyncRankBuffersHook'))
    cfg.custom_hooks = hooks
    return True


def _slurm_env_to_torch_env(port=None) -> None:
    """Fill RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT from SLURM variables, as
    mmengine's ``init_dist('slurm')`` does: the port is ``port`` when given, else ``MASTER_PORT``,
    else 29500; ``MASTER_ADDR`` is kept when set, else the first host of ``SLURM_NODELIST``."""
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ['SLURM_NODELIST']
        os.environ['MASTER_ADDR'] = subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1')
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ['SLURM_LOCALID']


def _sync_bn_to_bn(node, path: str, changed: list):
    """Replace ``type='SyncBN'`` / ``'MMSyncBN'`` by ``'BN'`` in the nested dicts / lists of
    ``node`` (in place); append the changed fields' paths to ``changed``."""
    if isinstance(node, dict):
        if node.get('type') in _SYNC_BN_TYPES:
            node['type'] = 'BN'
            changed.append(path)
        for key, value in node.items():
            _sync_bn_to_bn(value, f'{path}.{key}', changed)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            _sync_bn_to_bn(value, f'{path}.{index}', changed)


def configure_device(cfg, launcher: str) -> bool:
    """Check ``cfg.env_cfg`` (:func:`check_env_cfg`); in a multi-process run make the ranks
    exit when their launcher dies (:func:`exit_with_launcher`) and add
    ``SyncRankBuffersHook`` (:func:`add_buffer_sync`); then adapt ``cfg`` (an mmengine Config)
    to a CPU-only machine (no-op when CUDA is available).

    Sets the gloo backend; for ``pytorch`` / ``slurm`` launchers also a DDP wrapper with
    ``device_ids=None``, SyncBN -> BN in ``cfg.model`` (logged; single-process runs need no change,
    mmengine reverts SyncBN itself) and the gloo process group. Returns True when the run is on
    CPU.
    """
    check_env_cfg(cfg)
    if launcher != 'none':
        exit_with_launcher()
        add_buffer_sync(cfg)
    if torch.cuda.is_available():
        return False
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    if launcher == 'none':
        return True
    if launcher not in ('pytorch', 'slurm'):
        raise ValueError(f'--launcher {launcher} is not supported on CPU; use pytorch or slurm')
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if launcher == 'slurm':
        _slurm_env_to_torch_env(dist_cfg.get('port'))
    changed = []
    _sync_bn_to_bn(cfg.model, 'model', changed)
    if changed and os.environ.get('RANK', '0') == '0':
        print_log(f'configure_device: no SyncBatchNorm on CPU; BN (statistics per process) for '
                  f'{", ".join(changed)}', logger='current', level=logging.WARNING)
    if not dist.is_initialized():
        kwargs = {k: v for k, v in dist_cfg.items()
                  if k not in ('backend', 'port', 'init_backend')}
        if 'timeout' in kwargs:
            from datetime import timedelta
            kwargs['timeout'] = timedelta(seconds=kwargs['timeout'])
        dist.init_process_group(backend='gloo', **kwargs)
    return True


def default_collect_dirs(cfg) -> list:
    """Give every evaluator metric without a ``collect_dir`` one under the work dir.

    In a distributed run, mmengine's metrics hand the results of ranks > 0 to rank 0 through
    files in ``collect_dir``; without one, rank 0 creates ``./.dist_test/<random>/`` in the
    *current* directory and removes only ``<random>``, leaving an empty ``.dist_test`` behind.
    ``<work_dir>/.dist_test`` (the same path on every rank, as mmengine needs) is removed
    whole by rank 0 after each collection. Returns the fields set (e.g.
    ``['val_evaluator.collect_dir']``).
    """
    collect_dir = os.path.join(cfg.work_dir, '.dist_test')
    changed = []
    for field in ('val_evaluator', 'test_evaluator'):
        evaluator = cfg.get(field)
        if isinstance(evaluator, dict) and 'metrics' in evaluator:
            evaluator = evaluator['metrics']
        metrics = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
        for index, metric in enumerate(metrics):
            if isinstance(metric, dict) and metric.get('collect_device', 'cpu') == 'cpu' \
                    and not metric.get('collect_dir'):
                metric['collect_dir'] = collect_dir
                changed.append(f'{field}.{index}.collect_dir'
                               if isinstance(evaluator, (list, tuple)) else
                               f'{field}.collect_dir')
    return changed


def close_distributed() -> None:
    """Tear the default process group down (after a barrier) if one exists.

    Left to the interpreter's exit, gloo's threads can outlive the group's destructor and a rank
    aborts after its work is done ("terminate called without an active exception", exit -6),
    failing a run whose results are already saved. The tools call it after a run that ended
    normally (every rank reaches the barrier). No-op in a single-process run.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    dist.destroy_process_group()


def exit_distributed_rank() -> None:
    """End a distributed tool run that finished normally: tear the group down, then leave.

    :func:`close_distributed`, then, in a rank of a distributed run (``WORLD_SIZE`` > 1), run the
    Python exit handlers (``atexit``: log handlers, mmengine's clean-ups), flush the streams and
    leave with ``os._exit(0)``, skipping only the native teardown (gloo's and data-loader threads,
    C++ static destructors): even after the explicit teardown a rank still
    aborted at that point now and then under load ("terminate called without an active
    exception", exit -6, seen in CI-like runs on a busy 2-core machine). Everything the run
    writes (checkpoints, metrics, predictions) is written before this is called. No-op beyond
    :func:`close_distributed` in a single-process run.
    """
    close_distributed()
    if int(os.environ.get('WORLD_SIZE', '1')) <= 1:
        return
    atexit._run_exitfuncs()  # what a normal exit runs at the Python level, once
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)
