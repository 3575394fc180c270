"""The OUTPUT_DIR lock between real processes: a second one is refused at once, naming the
first; a killed holder leaves nothing stale."""

import signal
import subprocess
import sys
import textwrap

import pytest

from pipeline.run_lock import RunInProgressError, exclusive_use

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from pipeline.run_lock import exclusive_use
    with exclusive_use(Path(sys.argv[1])):
        print("holding", flush=True)
        time.sleep(600)
    """
)


@pytest.fixture
def holder(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "holding"
    yield process
    process.kill()
    process.wait()


def test_a_second_run_is_refused_naming_the_first(tmp_path, holder):
    with pytest.raises(RunInProgressError, match=rf"in use by .*\(pid {holder.pid}, since"):
        with exclusive_use(tmp_path):
            pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with exclusive_use(tmp_path):
        pass  # the kernel released the lock with the process
    with exclusive_use(tmp_path):
        pass  # and a finished run releases it too
