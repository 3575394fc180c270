"""Processes that a run starts and that must not outlive it (the serving check's model server:
576 MB, listening, adopted by init after a killed run)."""

import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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
    started it ends, however it ends (kill -9 included); elsewhere a plain Popen.

    The death signal is set by a small interpreter that then execs `command` (the signal
    survives exec), not by a `preexec_fn`: that forces a fork of a process whose gRPC threads
    (Beam's, TFMA's) are running, and gRPC's fork handlers then print to the console and can
    break the child ("epoll_wait error: Bad file descriptor")."""
    if sys.platform != "linux":
        return subprocess.Popen(command, **popen_args)
    # -I: nothing from the environment or the working folder; -S: no site packages.
    wrapper = [sys.executable, "-I", "-S", __file__, str(os.getpid())]
    return subprocess.Popen(wrapper + command, **popen_args)


def _exec_with_parent(parent: int, command: list[str]) -> None:
    """Become `command`, set to be killed when process `parent` ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent ended before the line above
        sys.exit(1)
    os.execvp(command[0], command)


if __name__ == "__main__":
    _exec_with_parent(int(sys.argv[1]), sys.argv[2:])
