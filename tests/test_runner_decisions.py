"""One behaviour on every runner: three spans arriving one after another, the second with drifted
classes, then a run with nothing new, through `make run` (TFX's LocalDagRunner) and through
`make kubeflow-local` (the compiled KFP v2 spec); both decide alike, and no log mentions Prism or
a download."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata import metadata_store

from components.data.codecs import encode_png
from components.data.sample import load_sample, make_example
from pipeline.local_runner import sqlite_metadata
from pipeline.results import UnchangedRun, run_summary
from tests.pipeline_runs import TFX_PACKAGES_ITSELF, run_pipeline, settings_for
from trainer.features import MNIST_CLASS_NAMES

# Small runs, always blessed when they are evaluated (this test is about what each run reads
# and compares, not about the gates' thresholds).
SCENARIO = {"EPOCHS": "2", "EVAL_REGRESSION_ALPHA": "0"}
# What a run may not log: Beam's Prism runner, or anything fetched at run time.
FORBIDDEN = ("prism", "downloading")


def write_span(data_root: Path, span: int, digits: list[int]) -> None:
    """600 sample digits of the classes `digits` (each span its own), as raw tf.Examples."""
    pixels, labels = load_sample(5000, seed=5)
    chosen = np.flatnonzero(np.isin(labels, digits))[600 * (span - 1) : 600 * span]
    folder = data_root / f"span-{span}"
    folder.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(folder / "digits.tfrecord")) as writer:
        for i in chosen:
            label = int(labels[i])
            example = make_example(encode_png(pixels[i]), label, MNIST_CLASS_NAMES[label])
            writer.write(example.SerializeToString())


def local_decisions(output_dir: Path, completed) -> dict:
    """What a `make run` decided, from its output and ML Metadata."""
    if completed.returncode:
        return {"refused": completed.returncode, "message": completed.stderr}
    summary = run_summary(settings_for(output_dir).metadata_path)
    if isinstance(summary, UnchangedRun):
        return {"model": str(summary.model_path), "evaluated": False, "pushed": False}
    store = metadata_store.MetadataStore(sqlite_metadata(settings_for(output_dir).metadata_path))
    [blessing] = store.get_artifacts_by_uri(str(summary.artifact_uris["Evaluator.ModelBlessing"]))
    baseline = blessing.custom_properties.get("baseline_model")
    return {
        "model": str(summary.artifact_uris["Trainer.Model"]),
        "spans": summary.spans,
        "baseline": baseline.string_value if baseline else None,
        "blessed": summary.blessed,
        "pushed": summary.pushed_path is not None,
    }


def kubeflow_decisions(output_dir: Path, completed) -> dict:
    """What a `make kubeflow-local` run decided, from its run record and artifact store."""
    root = output_dir / "kubeflow-local"
    if completed.returncode:
        return {"refused": completed.returncode, "message": completed.stderr}
    run = json.loads(sorted((root / "runs").glob("*.json"))[-1].read_text())
    store = {a["name"]: a for a in json.loads((root / "artifacts.json").read_text())}
    tasks = run["tasks"]

    def output(task: str, key: str) -> dict:
        return store[tasks[task]["outputs"][key][0]]

    model = output("Trainer", "model")["uri"]
    if tasks["Evaluator"]["state"] == "SKIPPED":
        return {"model": model, "evaluated": False, "pushed": False}
    blessing = output("Evaluator", "blessing")["metadata"]
    return {
        "model": model,
        "spans": [store[n]["metadata"]["span"] for n in tasks["Transform"]["inputs"]["examples"]],
        "baseline": blessing.get("baseline_model"),
        "blessed": bool(blessing["blessed"]),
        "pushed": bool(output("Pusher", "pushed_model")["metadata"]["pushed"]),
    }


def without_messages(decisions: list[dict]) -> list[dict]:
    return [{k: v for k, v in d.items() if k != "message"} for d in decisions]


def in_run_terms(decisions: list[dict]) -> list[dict]:
    """Models named by the run that trained them ("run 1"), so that runners compare."""
    trained = {d["model"]: f"run {i}" for i, d in enumerate(decisions, 1) if "spans" in d}
    named = []
    for decision in decisions:
        decision = dict(decision)
        for key in ("model", "baseline"):
            if decision.get(key):
                decision[key] = trained.get(decision[key], decision[key])
        named.append(decision)
    return named


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """Both runners through the same sequence of spans; their decisions and logs."""
    data_root = tmp_path_factory.mktemp("spans")
    outputs = {
        "make run": tmp_path_factory.mktemp("local"),
        "kubeflow": tmp_path_factory.mktemp("kfp"),
    }
    decisions = {name: [] for name in outputs}
    stdout = {name: "" for name in outputs}
    arrivals = [(1, list(range(10))), (2, [0, 1]), (3, list(range(10))), None]
    for arrival in arrivals:
        if arrival:
            write_span(data_root, *arrival)
        for name, output_dir in outputs.items():
            (output_dir / "tmp").mkdir(exist_ok=True)
            module = "pipeline.run" if name == "make run" else "kubeflow.local_run"
            completed = run_pipeline(
                output_dir,
                module,
                DATA_ROOT=str(data_root),
                TMPDIR=str(output_dir / "tmp"),
                **SCENARIO,
            )
            read = local_decisions if name == "make run" else kubeflow_decisions
            decisions[name].append(read(output_dir, completed))
            stdout[name] += completed.stdout + completed.stderr
    return outputs, {name: in_run_terms(d) for name, d in decisions.items()}, stdout


def test_both_runners_decide_alike_on_three_spans_and_an_unchanged_run(scenario):
    _, decisions, _ = scenario
    local, kubeflow = decisions["make run"], decisions["kubeflow"]
    first, drifted, third, unchanged = local
    assert first == {
        "model": "run 1",
        "spans": [1],
        "baseline": None,
        "blessed": True,
        "pushed": True,
    }
    assert drifted["refused"] == 3 and "train split against span 1" in drifted["message"]
    # Span 3 is compared with span 1, the latest that passed, and its model with run 1's.
    assert third == {
        "model": "run 3",
        "spans": [3],
        "baseline": "run 1",
        "blessed": True,
        "pushed": True,
    }
    assert unchanged == {"model": "run 3", "evaluated": False, "pushed": False}
    assert "train split against span 1" in kubeflow[1]["message"]
    assert without_messages(kubeflow) == without_messages(local)


def test_no_copy_of_a_served_model_is_pushed(scenario):
    outputs, _, _ = scenario
    for name, output_dir in outputs.items():
        base = output_dir / (
            "kubeflow-local/serving_model" if name == "kubeflow" else "serving_model"
        )
        versions = sorted(base.glob(f"{settings_for(output_dir).model_name}/*/saved_model.pb"))
        assert len(versions) == 2, (name, versions)  # runs 1 and 3


def test_no_run_mentions_prism_or_a_download(scenario):
    outputs, _, stdout = scenario
    logs = {name: text for name, text in stdout.items()}
    for output_dir in outputs.values():
        for log in [
            *output_dir.glob("logs/*.log"),
            *output_dir.glob("kubeflow-local/logs/*/*.log"),
        ]:
            logs[str(log)] = log.read_text()
    assert len(logs) > 10
    for where, text in logs.items():
        lowered = text.lower()
        assert not [word for word in FORBIDDEN if word in lowered], where


def test_no_step_packages_tfx_and_the_runs_leave_no_temporary_files(scenario):
    outputs, _, _ = scenario
    step_logs = sorted((outputs["kubeflow"] / "kubeflow-local" / "logs").glob("*/*.log"))
    assert step_logs
    for log in step_logs:
        assert TFX_PACKAGES_ITSELF not in log.read_text(), log.name
    for output_dir in outputs.values():
        assert list((output_dir / "tmp").iterdir()) == []
