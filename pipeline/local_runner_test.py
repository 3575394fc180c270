"""The command-line wrapper of every pipeline entry point: Ctrl-C and OUTPUT_DIR in use, in real
processes."""

import os
import signal
import subprocess
import sys
import textwrap

from pipeline.local_runner import EXIT_CODES, INTERRUPTED
from pipeline.run_lock import LOCK_FILE, RunInProgressError, exclusive_use

ENTRY_POINT = textwrap.dedent(
    """
    import time
    from pipeline.local_runner import run_cli

    def main():
        print("running", flush=True)
        time.sleep(600)
        return 0

    run_cli(main)
    """
)


def start(output_dir) -> subprocess.Popen:
    """An entry point that runs until stopped, in a session of its own (as a terminal's job)."""
    process = subprocess.Popen(
        [sys.executable, "-c", ENTRY_POINT],
        env={**os.environ, "OUTPUT_DIR": str(output_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout.readline().strip() == "running"
    return process


def test_ctrl_c_ends_the_run_at_once_with_130_and_frees_output_dir(tmp_path):
    process = start(tmp_path)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends
    assert process.wait(timeout=5) == INTERRUPTED
    assert "interrupted" in process.stderr.read()
    with exclusive_use(tmp_path):
        pass


def test_a_second_entry_point_on_the_same_output_dir_is_refused_naming_the_first(tmp_path):
    first = start(tmp_path)
    try:
        second = subprocess.run(
            [sys.executable, "-c", ENTRY_POINT],
            env={**os.environ, "OUTPUT_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        first.kill()
        first.wait()
    assert second.returncode == EXIT_CODES[RunInProgressError]
    assert "running" not in second.stdout  # refused before its main began
    assert f"(pid {first.pid}, since" in second.stderr and "Traceback" not in second.stderr
    assert (tmp_path / LOCK_FILE).exists()
