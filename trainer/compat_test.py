"""Each private behaviour trainer/compat.py rests on, checked on the installed versions."""

import subprocess
import sys
import textwrap

import tensorflow as tf
import tf_keras
from tensorflow.python.autograph.impl import conversion

from trainer.compat import CHECKED_ON, leave_tf_keras_to_run_as_written


def test_the_installed_versions_are_those_the_entries_were_checked_on():
    installed = {
        "tensorflow": tf.__version__,
        "tf_keras": tf_keras.__version__,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }
    assert installed == CHECKED_ON, (
        f"trainer/compat.py was checked on {CHECKED_ON}, {installed} is installed: check each "
        "entry on the new versions, then update CHECKED_ON"
    )


def test_autograph_runs_tf_keras_as_written():
    leave_tf_keras_to_run_as_written()
    assert conversion.is_allowlisted(tf_keras.layers.Dense.call)
    assert not conversion.is_allowlisted(test_autograph_runs_tf_keras_as_written)


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_a_forked_run_keeps_its_own_exit_handlers_and_not_its_parents():
    ran = run_python(
        """
        import atexit, os
        from trainer.compat import run_with_own_exit_handlers
        atexit.register(print, "parent's")
        run_with_own_exit_handlers(lambda: atexit.register(print, "child's"))
        os._exit(0)  # as a forked child ends
        """
    )
    assert (ran.returncode, ran.stdout) == (0, "child's\n"), ran.stderr


def test_exit_now_flushes_output_and_skips_shutdown():
    ran = run_python(
        """
        import atexit, logging, sys
        from trainer.compat import exit_now
        atexit.register(print, "shutdown ran")
        logging.basicConfig(stream=sys.stderr)
        print("result", end="")
        logging.getLogger().warning("logged")
        exit_now(7)
        """
    )
    assert (ran.returncode, ran.stdout, ran.stderr.strip()) == (7, "result", "WARNING:root:logged")
