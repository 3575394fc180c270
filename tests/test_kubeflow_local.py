"""`make kubeflow-local` end to end on a small slice: every task of the compiled KFP v2 spec
executed here, the model pushed, and a second run resolving the first's blessed model."""

import json
import subprocess

import pytest

from tests.pipeline_runs import TFX_PACKAGES_ITSELF, run_pipeline, settings_for


def kubeflow_local(output_dir) -> subprocess.CompletedProcess:
    """`make kubeflow-local` with SMALL_RUN's settings and 2 epochs, the smallest run still
    blessed (its steps fork an interpreter of their own), temporary files under tmp/."""
    return run_pipeline(
        output_dir, "kubeflow.local_run", EPOCHS="2", TMPDIR=str(output_dir / "tmp")
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("kubeflow-local")
    (output_dir / "tmp").mkdir()
    first, second = kubeflow_local(output_dir), kubeflow_local(output_dir)
    for completed in (first, second):
        assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    return output_dir, first.stdout, second.stdout


def test_every_task_runs_and_the_model_is_pushed(two_runs):
    output_dir, first, _ = two_runs
    spec = json.loads((output_dir / "kubeflow-local" / "spec.json").read_text())
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    for task in tasks:
        assert f"] {task} done in" in first
    serving_base = (
        output_dir / "kubeflow-local" / "serving_model" / settings_for(output_dir).model_name
    )
    pushed = sorted(serving_base.glob("*/saved_model.pb"))
    assert pushed and f"Pushed model: {pushed[0].parent}" in first
    assert "Baseline: none" in first and "Serving check: passed" in first


def test_the_second_run_compares_against_the_first_runs_blessed_model(two_runs):
    output_dir, _, second = two_runs
    store = json.loads((output_dir / "kubeflow-local" / "artifacts.json").read_text())
    first_model = next(a["name"] for a in store if a["schema_title"] == "tfx.Model")
    assert f"Baseline: {first_model}" in second


def test_no_step_packages_tfx_for_remote_workers(two_runs):
    output_dir, _, _ = two_runs
    step_logs = sorted((output_dir / "kubeflow-local" / "logs").glob("*/*.log"))
    assert step_logs
    for log in step_logs:
        assert TFX_PACKAGES_ITSELF not in log.read_text(), log.name


def test_the_runs_leave_nothing_in_the_temporary_folder(two_runs):
    output_dir, _, _ = two_runs
    assert list((output_dir / "tmp").iterdir()) == []
