"""`make faults`: runs killed, interrupted and started together, on small real runs (about six
minutes). `make test` has the fast part of each (pipeline/local_runner_test.py,
pipeline/run_lock_test.py, pipeline/run_test.py, pipeline/data_source_test.py)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.local_runner import EXIT_CODES, INTERRUPTED
from pipeline.run_lock import RunInProgressError
from pipeline.settings import PROJECT_ROOT
from tests.pipeline_runs import SMALL_RUN, served_versions

pytestmark = pytest.mark.faults


def start_run(output_dir, **overrides: str) -> subprocess.Popen:
    """`make run`'s entry point on SMALL_RUN, in a session of its own (as a terminal's job)."""
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.run"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **SMALL_RUN, "OUTPUT_DIR": str(output_dir), **overrides},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for(process: subprocess.Popen, line: str) -> None:
    for output in process.stdout:
        if line in output:
            return
    raise AssertionError(f"the run ended (exit {process.wait()}) before printing {line!r}")


def finish(process: subprocess.Popen) -> tuple[int, str]:
    output = process.stdout.read()
    return process.wait(timeout=1800), output


def test_a_first_run_killed_as_it_began_leaves_a_project_the_next_run_uses(tmp_path):
    process = start_run(tmp_path)
    wait_for(process, "ImportExampleGen running")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    status, output = finish(start_run(tmp_path))
    assert status == 0, output
    assert "Pushed model:" in output and "Traceback" not in output


def test_ctrl_c_stops_a_run_within_5_s_and_keeps_the_served_model(tmp_path):
    status, output = finish(start_run(tmp_path))
    assert status == 0, output
    served = served_versions(tmp_path)
    process = start_run(tmp_path, ENABLE_CACHE="0")  # so that Transform works, not reuses
    wait_for(process, "Transform running")
    time.sleep(2)  # inside the component
    interrupted = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C
    status, output = finish(process)
    assert status == INTERRUPTED and time.monotonic() - interrupted < 5, output
    assert "Trainer running" not in output and "interrupted" in output
    assert served_versions(tmp_path) == served
    status, output = finish(start_run(tmp_path))
    assert status == 0, output


def test_two_runs_started_together_one_runs_the_other_is_refused(tmp_path):
    first, second = start_run(tmp_path), start_run(tmp_path)
    (first_status, first_output), (second_status, second_output) = finish(first), finish(second)
    outcomes = sorted([(first_status, first_output), (second_status, second_output)])
    (ran, ran_output), (refused, refused_output) = outcomes[0], outcomes[1]
    assert ran == 0, ran_output
    assert refused == EXIT_CODES[RunInProgressError], refused_output
    assert "is in use by" in refused_output and "Traceback" not in refused_output
