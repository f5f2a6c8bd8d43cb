"""Running tools/*.py and tools/*.sh from the tests: tiny settings, free ports, one-process batches.

Every run uses one OpenMP thread per process: on a 2-core machine two processes of two threads
each (or a neighbour's job) oversubscribe the cores and an iteration gets ~20x slower.
"""
import json
import os
import os.path as osp
import socket
import subprocess
import sys
import textwrap

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(ROOT, 'configs', 'toy', 'ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py')
TOY_DATA = osp.join(ROOT, 'data', 'toy_pascal_mt')

#: 2 ViT blocks, 4 iterations (warm-up 2, poly 2), checkpoint and validation at the end.
TINY = ['train_cfg.max_iters=4', 'train_cfg.val_interval=4', 'default_hooks.checkpoint.interval=4',
        'default_hooks.logger.interval=1', 'param_scheduler.0.end=2', 'param_scheduler.1.begin=2',
        'param_scheduler.1.end=4',
        'model.backbone.arch.num_layers=2', 'model.backbone.out_indices=[0,1]']


def tool_env(**extra) -> dict:
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               PYTHON=sys.executable)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def free_port() -> int:
    """A TCP port nobody listens on now (for torchrun's MASTER_PORT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run(args, env=None, check=True, timeout=600, cwd=ROOT):
    """Run ``args`` (a python script with its arguments, or ``bash tools/x.sh ...``) in ``cwd``
    (the repo root); return the CompletedProcess (asserting a zero exit status when ``check``)."""
    cmd = args if args[0] == 'bash' else [sys.executable] + list(args)
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          env=env or tool_env(), timeout=timeout)
    if check:
        assert proc.returncode == 0, (f'{cmd} exited with {proc.returncode}\n'
                                      + proc.stdout[-3000:] + proc.stderr[-5000:])
    return proc


_DRIVER = textwrap.dedent('''
    import json, runpy, sys
    results = []
    for script, argv in json.loads(sys.argv[1]):
        sys.argv = [script] + argv
        try:
            runpy.run_path(script, run_name='__main__')
            results.append(None)
        except BaseException as error:  # SystemExit of argparse included
            results.append([type(error).__name__, str(error)])
    print('@@RESULTS@@' + json.dumps(results))
''')


def run_many(cases, timeout=600, env=None):
    """Run several ``(script, argv)`` tool invocations one after the other in ONE fresh Python
    process (mmase is imported once; each is run as ``__main__`` with its own ``sys.argv``).

    For runs expected to stop early (bad config, bad data): returns, per case, None when it
    finished or ``(exception type name, message)`` of what stopped it.
    """
    proc = subprocess.run([sys.executable, '-c', _DRIVER, json.dumps(cases)], cwd=ROOT,
                          capture_output=True, text=True, env=env or tool_env(), timeout=timeout)
    assert '@@RESULTS@@' in proc.stdout, proc.stdout[-3000:] + proc.stderr[-5000:]
    return [tuple(r) if r else None for r in json.loads(proc.stdout.split('@@RESULTS@@')[-1])]


def write_split(path, ids) -> str:
    """An ``ImageSets`` file listing ``ids``, one a line."""
    with open(path, 'w') as f:
        f.write(''.join(f'{i}\n' for i in ids))
    return str(path)


def toy_ids(split: str):
    with open(osp.join(TOY_DATA, 'ImageSets', 'Context', f'{split}.txt')) as f:
        return [line.strip() for line in f if line.strip()]


def work_dir_files(work_dir: str):
    """Files under ``work_dir`` relative to it, with the run's timestamp folder named <ts>."""
    out = []
    for dirpath, _, names in os.walk(work_dir):
        for name in names:
            rel = osp.relpath(osp.join(dirpath, name), work_dir).split(os.sep)
            if len(rel) > 1 and rel[0][:8].isdigit():  # 20261125_130803/...
                stamp = rel[0]
                rel = ['<ts>'] + [part.replace(stamp, '<ts>') for part in rel[1:]]
            out.append('/'.join(rel))
    return sorted(out)
