"""Ranks that exit when their launcher dies (Linux ``prctl(PR_SET_PDEATHSIG)``).

No torch import here: the tests load this file alone in short-lived processes.
"""
import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def exit_with_launcher() -> bool:
    """Make this process receive SIGTERM when its parent (the ``torchrun`` agent, ``srun``'s
    step daemon) dies, so that killing only the launcher stops every rank instead of leaving
    them training (Linux ``prctl(PR_SET_PDEATHSIG)``). The tools call it early in a rank
    (``mmase.utils.launch.configure_device``). Returns False where the call is not available
    (not Linux), True otherwise."""
    if not sys.platform.startswith('linux'):
        return False
    parent = os.getppid()
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0,
                                               0) != 0:
        return False
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)  # the launcher died during the call
    return True
