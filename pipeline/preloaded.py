"""`python -m <module>` as a fork of one interpreter that has already imported the heavy
modules (multiprocessing's forkserver). TFX, TensorFlow, Beam and the executors cost 5-10 s to
import; this pays that once instead of once per run: `make kubeflow-local` runs each step of the
spec this way, and the tests each pipeline run.

The module runs as `__main__` with the given arguments, environment and working directory, its
output appended to files, as `python -m` in a new process would. What differs: the preloaded
modules were imported (and their import-time side effects happened) before the environment was
set, so a module that reads the environment at import time would see the forkserver's."""

import multiprocessing
import multiprocessing.forkserver
import os
import runpy
import sys
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

from trainer.compat import run_with_own_exit_handlers

FORKSERVER = multiprocessing.get_context("forkserver")


def start_preloading(modules: list[str]) -> None:
    """Starts the forkserver importing `modules` while this process goes on. Only the first
    call in a process chooses the modules: the forkserver then stays up until the process ends."""
    FORKSERVER.set_forkserver_preload(modules)
    multiprocessing.forkserver.ensure_running()


def _run_as_main(
    module: str, args: list[str], stdout: str, stderr: str, env: dict | None, cwd: str | None
) -> None:
    """In the forked child: output to the files, then `python -m module args`."""
    for fd, path in ((1, stdout), (2, stderr)):
        opened = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    tempfile.tempdir = None  # read from this environment's TMPDIR again
    if cwd is not None:
        os.chdir(cwd)
    sys.argv = [module, *args]
    # The preloaded copy of the module stays unused beside `__main__`, as when `python -m`
    # runs a module that something else imports; runpy warns about it only here.
    warnings.filterwarnings("ignore", "'.*' found in sys.modules after import", RuntimeWarning)
    run_with_own_exit_handlers(
        lambda: runpy.run_module(module, run_name="__main__", alter_sys=True)
    )


def run_module(
    module: str,
    args: list[str],
    stdout: Path,
    stderr: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float | None = None,
) -> int:
    """Runs `python -m module args` in a fork of the preloaded interpreter, its output appended
    to `stdout` (and `stderr`, else the same file), in environment `env` (else this one);
    returns its exit status (negative: the signal that ended it). One still running after
    `timeout_s` is killed (TimeoutError)."""
    child = FORKSERVER.Process(
        target=_run_as_main,
        args=(
            module,
            args,
            str(stdout),
            str(stderr or stdout),
            None if env is None else dict(env),
            None if cwd is None else str(cwd),
        ),
    )
    child.start()
    child.join(timeout_s)
    if child.exitcode is None:
        child.kill()
        child.join()
        raise TimeoutError(f"python -m {module} ran longer than {timeout_s} s")
    return child.exitcode
