"""Make mmengine's Runner work on machines without a GPU, single- or multi-process.

mmengine assumes CUDA for distributed runs: it calls ``torch.cuda.set_device`` before creating
the process group and wraps the model in DDP with ``device_ids=[LOCAL_RANK]``. On CPU we create
the gloo process group ourselves (mmengine then skips its own ``init_dist``) and ask for a
``MMDistributedDataParallel`` without device ids.
"""
import os
import subprocess

import torch
import torch.distributed as dist


def _slurm_env_to_torch_env(port: str = '29500') -> None:
    """Fill RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT from SLURM variables."""
    node_list = os.environ['SLURM_NODELIST']
    master = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
    os.environ.setdefault('MASTER_ADDR', master)
    os.environ.setdefault('MASTER_PORT', port)
    os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
    os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
    os.environ.setdefault('LOCAL_RANK', os.environ['SLURM_LOCALID'])


def configure_device(cfg, launcher: str) -> bool:
    """Adapt ``cfg`` (an mmengine Config) to a CPU-only machine; no-op when CUDA is available.

    Sets the gloo backend, a DDP wrapper with ``device_ids=None`` and, for ``pytorch`` / ``slurm``
    launchers, initialises the gloo process group. Returns True when the run is on CPU.
    """
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
        _slurm_env_to_torch_env(str(dist_cfg.get('port', 29500)))
    if not dist.is_initialized():
        kwargs = {k: v for k, v in dist_cfg.items() if k not in ('backend', 'port')}
        if 'timeout' in kwargs:
            from datetime import timedelta
            kwargs['timeout'] = timedelta(seconds=kwargs['timeout'])
        dist.init_process_group(backend='gloo', **kwargs)
    return True
