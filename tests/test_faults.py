"""`make faults`: runs killed, interrupted and started together, on small real runs, and a
flood of half-open connections against the model server. `make test` has the fast part of each
(pipeline/local_runner_test.py, pipeline/run_lock_test.py, pipeline/run_test.py,
pipeline/data_source_test.py, serving/rest_test.py)."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from components.data import sample
from components.data.codecs import encode_png, write_idx
from components.data.sample import load_sample
from pipeline.local_runner import EXIT_CODES, INTERRUPTED
from pipeline.run_lock import RunInProgressError
from pipeline.settings import PROJECT_ROOT
from serving.rest import RestSettings
from tests.bench.serving import ServerProcess, bench_flood
from tests.pipeline_runs import SMALL_RUN, served_versions, settings_for

pytestmark = pytest.mark.faults

# The components of a run, in the order they start ("[k/14] <name> running...").
COMPONENTS = [
    "ImportExampleGen",
    "ImportSchemaGen",
    "latest_blessed_model_resolver",
    "latest_push_resolver",
    "previous_statistics_resolver",
    "StatisticsGen",
    "ExampleValidator",
    "ValidationGate",
    "Transform",
    "Trainer",
    "CandidateCheck",
    "Evaluator",
    "ServingValidator",
    "Pusher",
]


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


@pytest.mark.parametrize("attempt", range(10))
def test_two_runs_started_together_one_runs_the_other_is_refused(tmp_path_factory, attempt):
    """The first attempt on a new OUTPUT_DIR (both would write the sample), the others on the
    project it leaves, where a run that changes nothing may end (in under a second, all of it
    cached) before the other takes OUTPUT_DIR: then both run, one after the other, and each
    reports its own run."""
    output_dir = tmp_path_factory.getbasetemp() / "together"
    first, second = start_run(output_dir), start_run(output_dir)
    outcomes = sorted([finish(first), finish(second)])
    assert [status for status, _ in outcomes] in ([0, 0], [0, EXIT_CODES[RunInProgressError]])
    assert all("Traceback" not in output for _, output in outcomes)
    (_, ran_output), (refused, refused_output) = outcomes
    if refused:
        assert "is in use by" in refused_output, refused_output
    else:
        assert attempt > 0  # on a new OUTPUT_DIR both write the sample, train and push
        assert run_id(ran_output) != run_id(refused_output)
    print(f"attempt {attempt}: " + ("one refused" if refused else "one after the other"))


def run_id(output: str) -> str:
    return re.search(r"Pipeline run (\S+) finished", output)[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project after one successful small run: a model is served."""
    output_dir = tmp_path_factory.mktemp("project")
    status, output = finish(start_run(output_dir))
    assert status == 0, output
    return output_dir


def assert_kept(served: dict[str, float], output_dir) -> None:
    """Every version served before is still there, unchanged (new ones may have come)."""
    now = served_versions(output_dir)
    assert {version: now.get(version) for version in served} == served


@pytest.mark.parametrize("component", COMPONENTS)
def test_ctrl_c_and_kill_9_as_each_component_runs_leave_a_project_the_next_run_uses(
    project, component
):
    served = served_versions(project)
    process = start_run(project, ENABLE_CACHE="0")  # each component works, none is reused
    wait_for(process, f"{component} running")
    interrupted = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C
    status, output = finish(process)
    stopped_s = time.monotonic() - interrupted
    assert status == INTERRUPTED and stopped_s < 5, output
    assert_kept(served, project)
    process = start_run(project)
    wait_for(process, f"{component} running")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert_kept(served, project)
    status, output = finish(start_run(project))
    assert status == 0 and "Traceback" not in output, output
    assert_kept(served, project)
    print(f"{component}: Ctrl-C ended the run in {stopped_s:.1f} s; after kill -9 the next run ran")


def test_a_flood_of_half_open_rest_connections_is_held_without_threads_and_closed(project):
    """2,000 connections that announce a body and send one byte, or send nothing, against `make
    serve`'s server with its default settings."""
    rest = RestSettings()
    settings_of_run = settings_for(project)
    server = ServerProcess(settings_of_run.serving_model_dir, settings_of_run.model_name)
    images = [encode_png(pixels) for pixels in load_sample(8, seed=3)[0]]
    try:
        flood = bench_flood(server, images)
    finally:
        server.stop()
    print(flood)
    assert flood["threads_during"] <= flood["threads_before"] + rest.workers + 2
    assert flood["good_requests"] == 40  # every one answered
    closed_within = max(rest.idle_timeout_s, rest.body_timeout_s) + 5
    assert flood["all_closed_after_s"] is not None
    assert flood["all_closed_after_s"] <= closed_within
    assert flood["rss_growth_mb"] < 100


def bad_data(root, case: str) -> dict[str, str]:
    """The settings of a run on data that must be refused before any component runs."""
    pixels, labels = load_sample(200, seed=3)
    if case in ("empty class folder", "too few examples"):
        counts = {"empty class folder": (30, 30, 0), "too few examples": (3, 2, 30)}[case]
        for name, count in zip(("cat", "dog", "fox"), counts, strict=True):
            (root / name).mkdir(parents=True)
            for i in range(count):
                (root / name / f"{i}.png").write_bytes(encode_png(pixels[i]))
        return {"DATA": str(root)}
    if case == "IDX header announcing more":
        root.mkdir()
        write_idx(root / "train-images-idx3-ubyte", pixels[:150])
        write_idx(root / "t10k-images-idx3-ubyte", pixels[150:])
        write_idx(root / "train-labels-idx1-ubyte", labels[:150])
        write_idx(root / "t10k-labels-idx1-ubyte", labels[150:])
        images = root / "train-images-idx3-ubyte"
        images.write_bytes(images.read_bytes()[: -28 * 28 * 10])
        return {"DATA": str(root)}
    sample.write_sample(root, 1000, seed=0)  # a TFRecord cut in the middle
    records = root / sample.SAMPLE_FILE_NAME
    records.write_bytes(records.read_bytes()[:200_000])
    return {"DATA_ROOT": str(root)}


@pytest.mark.parametrize(
    "case",
    ["empty class folder", "too few examples", "IDX header announcing more", "TFRecord cut short"],
)
def test_bad_data_is_refused_in_one_line_before_any_component(tmp_path, case):
    settings = bad_data(tmp_path / "data", case)
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "pipeline.run"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **SMALL_RUN, "OUTPUT_DIR": str(tmp_path / "out"), **settings},
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.monotonic() - started
    print(f"\n{case}: exit {completed.returncode} in {seconds:.1f} s: {completed.stderr.strip()}")
    assert completed.returncode == 2
    assert len(completed.stderr.strip().splitlines()) == 1
    assert str(tmp_path / "data") in completed.stderr and "running" not in completed.stdout
