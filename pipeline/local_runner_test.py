"""The command-line wrapper of every pipeline entry point: Ctrl-C and OUTPUT_DIR in use, in real
processes; the run id that run_pipeline reports, on a real one-component pipeline."""

import os
import signal
import subprocess
import sys
import textwrap

from ml_metadata import metadata_store
from tfx import v1 as tfx
from tfx.dsl.compiler.constants import PIPELINE_RUN_CONTEXT_TYPE_NAME

from pipeline.local_runner import (
    EXIT_CODES,
    INTERRUPTED,
    TEMP_PREFIX,
    run_pipeline,
    sqlite_metadata,
)
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


def start(output_dir, **env: str) -> subprocess.Popen:
    """An entry point that runs until stopped, in a session of its own (as a terminal's job)."""
    process = subprocess.Popen(
        [sys.executable, "-c", ENTRY_POINT],
        env={**os.environ, "OUTPUT_DIR": str(output_dir), **env},
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


def test_the_temporary_folders_of_killed_runs_are_removed_and_others_kept(tmp_path):
    ended = subprocess.Popen([sys.executable, "-c", ""])
    ended.wait()
    killed_runs = tmp_path / f"{TEMP_PREFIX}{ended.pid}-abc"
    running = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-def"
    for folder in (killed_runs, running):
        (folder / "beam").mkdir(parents=True)
    process = start(tmp_path / "outputs", TMPDIR=str(tmp_path))
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=30)
    assert not killed_runs.exists() and running.exists()
    assert sorted(p.name for p in tmp_path.glob(f"{TEMP_PREFIX}*")) == [running.name]


@tfx.dsl.components.component
def Count(count: tfx.dsl.components.Parameter[int]) -> None:  # noqa: N802 (a component's name)
    """A component with nothing to read or write: each run executes it afresh."""
    print(count)


def one_component_pipeline(root, count: int) -> tfx.dsl.Pipeline:
    return tfx.dsl.Pipeline(
        pipeline_name="count",
        pipeline_root=str(root / "tfx"),
        components=[Count(count=count)],
        metadata_connection_config=sqlite_metadata(root / "metadata.sqlite"),
    )


def test_run_pipeline_returns_the_id_of_the_run_it_made_whatever_else_the_store_holds(tmp_path):
    first = run_pipeline(one_component_pipeline(tmp_path, 1))
    second = run_pipeline(one_component_pipeline(tmp_path, 2))
    assert first != second
    store = metadata_store.MetadataStore(sqlite_metadata(tmp_path / "metadata.sqlite"))
    for run_id, count in ((first, 1), (second, 2)):
        run = store.get_context_by_type_and_name(PIPELINE_RUN_CONTEXT_TYPE_NAME, run_id)
        (execution,) = store.get_executions_by_context(run.id)
        assert execution.custom_properties["count"].int_value == count


QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
FAILING_ENTRY_POINT = textwrap.dedent(
    """
    import errno, logging, sys
    from pipeline.local_runner import run_cli

    def main():
        logging.basicConfig(filename=sys.argv[1], level=logging.INFO, force=True)  # as run.py
        if sys.argv[2] == "full":
            raise OSError(errno.ENOSPC, "No space left on device", sys.argv[1])
        if sys.argv[2] == "full, as TensorFlow says":
            import tensorflow as tf
            message = f"{sys.argv[1]}; No space left on device"
            raise tf.errors.ResourceExhaustedError(None, None, message)
        raise ValueError("the first line says what\\nthe rest is detail")

    run_cli(main)
    """
)


def test_an_unexpected_error_is_one_line_and_its_traceback_goes_to_the_log(tmp_path):
    log = tmp_path / "run.log"
    for kind, line in (
        ("error", f"error: ValueError: the first line says what (traceback in {log})"),
        ("full", f"error: the disk of {tmp_path} is full ("),
        ("full, as TensorFlow says", f"error: the disk of {tmp_path} is full ("),
    ):
        completed = subprocess.run(
            [sys.executable, "-c", FAILING_ENTRY_POINT, str(log), kind],
            # As quiet as pipeline/run.py makes TensorFlow and the libraries.
            env={**os.environ, "OUTPUT_DIR": str(tmp_path), **QUIET},
            capture_output=True,
            text=True,
        )
        assert completed.returncode == 1
        assert completed.stderr.strip().startswith(line), completed.stderr
        assert len(completed.stderr.strip().splitlines()) == 1
        assert "Traceback" in log.read_text()
