"""One run at a time per OUTPUT_DIR: `make run`, `make schema` and `make kubeflow-local` share
its metadata store, sample and serving folder, and two at once would mix their artifacts and
report each other's results.

An advisory lock (flock) on `<OUTPUT_DIR>/.run.lock`: the kernel releases it when its process
ends however it ends, so a killed run leaves no stale lock behind; the file names the process
that holds it, for the message of the run that is refused.
"""

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".run.lock"


class RunInProgressError(RuntimeError):
    """Another process is running on the same OUTPUT_DIR."""


@contextlib.contextmanager
def exclusive_use(output_dir: Path) -> Iterator[None]:
    """Holds OUTPUT_DIR for this process, or refuses at once, naming the process that holds it."""
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / LOCK_FILE, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise RunInProgressError(
                f"OUTPUT_DIR={output_dir} is in use by {holder}: wait for it to finish, or "
                "give this one another OUTPUT_DIR"
            ) from None
        lock.seek(0)
        lock.truncate()
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        lock.write(f"{command} (pid {os.getpid()}, since {time.strftime('%H:%M:%S')})\n")
        lock.flush()
        yield
