"""Processes that a run starts and that must not outlive it (the serving check's model server:
576 MB, listening, adopted by init after a killed run)."""

import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def running(pid: int) -> bool:
    """Whether process `pid` exists (a file it left behind may be removed when not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def start_child(command: list[str], **popen_args) -> subprocess.Popen:
    """`subprocess.Popen`, but on Linux the kernel kills the child when the process that
    started it ends, however it ends (kill -9 included); elsewhere a plain Popen."""
    if _LIBC is None:
        return subprocess.Popen(command, **popen_args)
    parent = os.getpid()

    def die_with_parent() -> None:  # runs in the child, between fork and exec
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent ended before the line above
            os._exit(1)

    return subprocess.Popen(command, preexec_fn=die_with_parent, **popen_args)
