"""One training run per work dir: a lock file naming the holder's pid and host.

``tools/train.py`` takes the lock (rank 0 only) before anything is built; a second run into the
same work dir (``--resume`` beside a live run, a re-submitted job) is refused with an error
naming the holder. The lock is an ``fcntl.flock`` on ``<work_dir>/.train.lock``, held for the
life of the process, so the kernel releases it whatever way the holder dies (``kill -9``
included); the file's content (pid, host, start time) is what the error reports. A lock file
left by a dead holder is stale: it is taken over, and the take-over logged.
"""
import atexit
import json
import os
import os.path as osp
import socket
import time
from typing import Optional

#: The lock file's name inside the work dir.
LOCK_NAME = '.train.lock'

_held = {}  # work dir -> open file descriptor, kept for the life of the process


class WorkDirLockedError(RuntimeError):
    """Another live process holds the work dir's lock."""


def _read_holder(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode('utf-8', 'replace')
    try:
        holder = json.loads(text) if text.strip() else {}
    except ValueError:
        holder = {}
    return holder if isinstance(holder, dict) else {}


def _describe(holder: dict) -> str:
    if not holder:
        return 'a process that wrote no details'
    started = holder.get('started')
    since = time.strftime(' since %Y-%m-%d %H:%M:%S', time.localtime(started)) if started else ''
    return f'pid {holder.get("pid")} on host {holder.get("host")}{since}'


def acquire_work_dir_lock(work_dir: str) -> Optional[dict]:
    """Take the training lock of ``work_dir`` for this process (created if missing).

    Returns:
        The holder recorded in a stale lock (a dead process's ``dict(pid, host, started)``)
        that was taken over, else None.

    Raises:
        WorkDirLockedError: a live process holds it; the message names the work dir, the lock
            file and the holder's pid and host.
    """
    import fcntl
    work_dir = osp.abspath(work_dir)
    if work_dir in _held:
        return None
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise WorkDirLockedError(
                f'work dir {work_dir} is in use by another training run: {_describe(holder)} '
                f'holds {path}. Wait for it to finish or stop it, or choose another '
                f'--work-dir.') from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break  # still the file at `path` (not one its holder removed meanwhile)
        except FileNotFoundError:
            pass
        os.close(fd)
    stale = _read_holder(fd) or None
    record = dict(pid=os.getpid(), host=socket.gethostname(), started=time.time())
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(record).encode('utf-8'))
    os.fsync(fd)
    _held[work_dir] = fd
    atexit.register(release_work_dir_lock, work_dir)
    return stale


def release_work_dir_lock(work_dir: str) -> None:
    """Remove the lock file of ``work_dir`` and release it (no-op if this process holds
    none). Registered with ``atexit`` by :func:`acquire_work_dir_lock`."""
    work_dir = osp.abspath(work_dir)
    fd = _held.pop(work_dir, None)
    if fd is None:
        return
    try:
        os.remove(osp.join(work_dir, LOCK_NAME))
    except OSError:
        pass
    os.close(fd)


def hold_work_dir_lock(work_dir: str) -> None:
    """:func:`acquire_work_dir_lock` in the process of rank 0 (``RANK`` / ``SLURM_PROCID``
    unset or 0); other ranks take no lock. A stale lock taken over is logged."""
    rank = os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0'))
    if str(rank) != '0':
        return
    stale = acquire_work_dir_lock(work_dir)
    if stale:
        from mmengine.logging import print_log
        print_log(f'{osp.join(work_dir, LOCK_NAME)}: took over the stale lock of '
                  f'{_describe(stale)} (no longer running)', logger='current')
