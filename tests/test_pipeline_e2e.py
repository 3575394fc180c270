"""The whole pipeline on a slice of the offline sample, through `make run`'s entry point."""

import itertools
import json
import re

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata import metadata_store
from PIL import Image

from components.data.codecs import encode_png
from components.data.sample import load_sample, make_example
from components.splits import SPLITS, TEST, TRAIN, VALIDATION
from pipeline.demo import read_split
from pipeline.local_runner import sqlite_metadata
from pipeline.results import UnchangedRun, run_summary
from pipeline.settings import Settings
from pipeline.stats import accuracy_text
from tests.fixtures import small_filesystem
from tests.pipeline_runs import (
    SMALL_RUN,
    TFX_PACKAGES_ITSELF,
    run_pipeline,
    served_versions,
    settings_for,
)
from trainer.calibration import MAX_TEMPERATURE, MIN_TEMPERATURE
from trainer.features import (
    CLASS_ID_OUTPUT,
    EXAMPLES_INPUT,
    IMAGES_INPUT,
    PROBABILITIES_OUTPUT,
    SERVING_DEFAULT_SIGNATURE,
    SERVING_IMAGE_SIGNATURE,
)

COMPONENTS = [  # node ids
    "ImportExampleGen",
    "previous_statistics_resolver",
    "StatisticsGen",
    "ImportSchemaGen",
    "ExampleValidator",
    "ValidationGate",
    "Transform",
    "latest_blessed_model_resolver",
    "Trainer",
    "latest_push_resolver",
    "CandidateCheck",
    "Evaluator",
    "ServingValidator",
    "Pusher",
]
# Three epochs on 800 digits: chance is 10 %, the model must be far above it.
HELD_OUT_ACCURACY_BOUND = 0.8


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def first_run(output_dir):
    (output_dir / "tmp").mkdir()
    completed = run_pipeline(output_dir, TMPDIR=str(output_dir / "tmp"))
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-4000:]
    return completed, run_summary(settings_for(output_dir).metadata_path)


def test_every_component_runs_and_the_model_is_blessed_and_pushed(first_run, output_dir):
    completed, summary = first_run
    assert sorted(c.name for c in summary.components) == sorted(COMPONENTS)
    # With no statistics or push yet, TFX's LatestArtifactStrategy returns None, which TFX
    # records as a failed resolver; the run goes on without them (a cluster gets no match).
    first_run_failures = {"previous_statistics_resolver", "latest_push_resolver"}
    assert {c.name for c in summary.components if c.state == "FAILED"} == first_run_failures
    assert {c.state for c in summary.components if c.name not in first_run_failures} == {"COMPLETE"}
    assert summary.blessed and summary.accuracy >= float(SMALL_RUN["EVAL_ACCURACY_THRESHOLD"])
    assert sorted(summary.per_class_accuracy) == list(range(10))
    assert summary.pushed_path.parent == settings_for(output_dir).serving_model_dir
    assert summary.pushed_path.name.isdigit()  # TF Serving's <base>/<model>/<version>/
    assert (summary.pushed_path / "saved_model.pb").is_file()
    assert f"[{len(COMPONENTS)}/{len(COMPONENTS)}] Pusher done" in completed.stdout
    assert summary.serving_check.problems == [] and "Serving check: passed" in completed.stdout
    assert f"Pushed model: {summary.pushed_path}" in completed.stdout
    assert f"Test accuracy: {accuracy_text(summary.accuracy, summary.test_examples)}" in (
        completed.stdout
    )
    assert "Served version" in completed.stdout
    assert f"test accuracy {accuracy_text(summary.accuracy, summary.test_examples)}" in (
        completed.stdout
    )  # the served model answers the test digits as the Evaluator scored them


def test_no_beam_component_packages_tfx_for_remote_workers(first_run, output_dir):
    logs = [log.read_text() for log in settings_for(output_dir).log_dir.glob("run-*.log")]
    assert any("Component Transform is finished" in log for log in logs)
    assert not any(TFX_PACKAGES_ITSELF in log for log in logs)


def test_the_run_leaves_nothing_in_the_temporary_folder(first_run, output_dir):
    assert list((output_dir / "tmp").iterdir()) == []


def executions(output_dir, component: str) -> dict[str, str]:
    """The exec properties of the latest execution of `component`, from ML Metadata."""
    store = metadata_store.MetadataStore(sqlite_metadata(settings_for(output_dir).metadata_path))
    latest = max(
        (e for e in store.get_executions() if e.type.endswith(f".{component}")),
        key=lambda e: e.id,
    )
    return {name: value.string_value for name, value in latest.custom_properties.items()}


def test_no_example_is_in_two_splits_and_the_trainer_cannot_read_the_test_split(
    first_run, output_dir
):
    _, summary = first_run
    splits = {split: read_split(summary.examples_uris, split)[0] for split in SPLITS}
    assert all(splits.values())
    assert sum(map(len, splits.values())) == int(SMALL_RUN["SAMPLE_SIZE"])
    for first, second in itertools.combinations(SPLITS, 2):
        assert not set(splits[first]) & set(splits[second]), (first, second)
    # Transform wrote no transformed test split, and the Trainer was given train and validation.
    transformed = summary.artifact_uris["Transform.Examples"]
    assert sorted(p.name for p in transformed.iterdir()) == ["Split-train", "Split-validation"]
    trainer = executions(output_dir, "Trainer")
    assert json.loads(trainer["train_args"]) == {"splits": [TRAIN]}
    assert json.loads(trainer["eval_args"]) == {"splits": [VALIDATION]}
    assert json.loads(executions(output_dir, "Evaluator")["example_splits"]) == [TEST]


def test_run_report_shows_the_runs_numbers(first_run, output_dir):
    _, summary = first_run
    report_dir = settings_for(output_dir).report_dir
    page = (report_dir / "index.html").read_text()
    assert accuracy_text(summary.accuracy, summary.test_examples) in page
    assert '<img src="reliability.png"' in page
    assert "BLESSED" in page and str(summary.pushed_path) in page
    facts = json.loads((report_dir / "report.json").read_text())
    matrix = np.array(facts["confusion_matrix"])
    assert matrix.sum() == summary.test_examples
    assert abs(np.trace(matrix) / matrix.sum() - summary.accuracy) < 1e-6  # same model, split
    assert sum(row["count"] for row in facts["reliability_bins"]) == summary.test_examples
    assert 0 <= facts["expected_calibration_error"] < 1
    assert MIN_TEMPERATURE < facts["temperature"] < MAX_TEMPERATURE
    assert 0 < facts["unfamiliar_below"] < 1 and "Held unsure" in page  # digits: fitted, shown
    assert facts["epochs_trained"] == int(SMALL_RUN["EPOCHS"])
    model = tf.saved_model.load(str(summary.pushed_path))
    assert facts["parameters"] == sum(np.prod(v.shape) for v in model.trainable_variables)
    for image in re.findall(r'<img src="([^"]+)"', page):
        with Image.open(report_dir / image) as png:
            assert png.format == "PNG" and png.width > 300


def test_pushed_signatures_agree_and_classify_held_out_digits(first_run):
    _, summary = first_run
    model = tf.saved_model.load(str(summary.pushed_path))
    pixels, labels = load_sample(5000, seed=Settings().data_seed)
    held_out = slice(int(SMALL_RUN["SAMPLE_SIZE"]), int(SMALL_RUN["SAMPLE_SIZE"]) + 500)
    pngs = [encode_png(image) for image in pixels[held_out]]
    examples = [make_example(png, 0, "unknown").SerializeToString() for png in pngs]

    by_image = model.signatures[SERVING_IMAGE_SIGNATURE](**{IMAGES_INPUT: tf.constant(pngs)})
    by_example = model.signatures[SERVING_DEFAULT_SIGNATURE](
        **{EXAMPLES_INPUT: tf.constant(examples)}
    )
    np.testing.assert_allclose(
        by_image[PROBABILITIES_OUTPUT], by_example[PROBABILITIES_OUTPUT], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(by_image[CLASS_ID_OUTPUT], by_example[CLASS_ID_OUTPUT])
    accuracy = np.mean(by_image[CLASS_ID_OUTPUT].numpy() == labels[held_out])
    assert accuracy >= HELD_OUT_ACCURACY_BOUND


def test_unchanged_rerun_trains_nothing_and_pushes_nothing(first_run, output_dir):
    versions = served_versions(output_dir)
    completed = run_pipeline(output_dir)
    assert completed.returncode == 0, completed.stderr[-4000:]
    summary = run_summary(settings_for(output_dir).metadata_path)
    assert isinstance(summary, UnchangedRun)
    states = {c.name: c.state for c in summary.components}
    for name in ("ImportExampleGen", "StatisticsGen", "Transform", "Trainer"):
        assert states[name] == "CACHED", name
    # The Trainer's model is the last blessed one: it was judged and pushed when it was trained.
    assert not {"Evaluator", "ServingValidator", "Pusher"} & set(states)
    assert "nothing to evaluate, check or push" in completed.stdout
    assert served_versions(output_dir) == versions  # no copy of the served model pushed


def test_failed_runs_keep_the_served_model_and_the_next_run_finishes_their_work(
    first_run, output_dir
):
    base = settings_for(output_dir).serving_model_dir
    versions = served_versions(output_dir)
    failed = run_pipeline(output_dir, BATCH_SIZE="0")  # the Trainer fails
    assert failed.returncode != 0
    assert "Trainer running" in failed.stdout and "Evaluator" not in failed.stdout
    assert served_versions(output_dir) == versions

    base.rename(base.with_name("away"))
    base.write_text("")  # a file where the Pusher writes: it fails after the blessing
    # Two epochs against the first run's three may regress; this test is about the push.
    blessed_if_above_floor = {"EPOCHS": "2", "EVAL_REGRESSION_ALPHA": "0"}
    push_failed = run_pipeline(output_dir, **blessed_if_above_floor)
    assert push_failed.returncode != 0
    assert re.search(r"\] Trainer done in .*\] Pusher running", push_failed.stdout, re.DOTALL)
    base.unlink()
    base.with_name("away").rename(base)
    assert served_versions(output_dir) == versions

    completed = run_pipeline(output_dir, **blessed_if_above_floor)  # nothing changed since
    assert completed.returncode == 0, completed.stderr[-4000:]
    summary = run_summary(settings_for(output_dir).metadata_path)
    states = {c.name: c.state for c in summary.components}
    assert states["ImportExampleGen"] == states["Transform"] == states["Trainer"] == "CACHED"
    # The model blessed in the run whose push failed is judged and pushed now.
    assert summary.blessed and summary.pushed_path and summary.pushed_path.name not in versions


def test_unblessed_model_is_not_pushed(first_run, output_dir):
    versions = served_versions(output_dir)
    completed = run_pipeline(output_dir, EPOCHS="1", EVAL_ACCURACY_THRESHOLD="0.9999")
    assert completed.returncode == 0, completed.stderr[-4000:]
    summary = run_summary(settings_for(output_dir).metadata_path)
    assert not summary.blessed and summary.pushed_path is None
    assert "NOT BLESSED - sparse_categorical_accuracy" in completed.stdout
    assert served_versions(output_dir) == versions


@pytest.mark.parametrize("data", ["missing", "empty", "cut short"])
def test_unusable_data_folder_fails_before_any_component(tmp_path, data):
    """Each in one line naming the folder or file (make faults: every bad-data case)."""
    data_root = tmp_path / "no-data"
    if data != "missing":
        data_root.mkdir()
    if data == "cut short":
        records = data_root / "digits.tfrecord"
        with tf.io.TFRecordWriter(str(records)) as writer:
            for image, label in zip(*load_sample(200, seed=1), strict=True):
                example = make_example(encode_png(image), int(label), str(label))
                writer.write(example.SerializeToString())
        records.write_bytes(records.read_bytes()[:-1000])
    completed = run_pipeline(tmp_path / "outputs", DATA_ROOT=str(data_root))
    assert completed.returncode == 2
    assert str(data_root) in completed.stderr and len(completed.stderr.strip().splitlines()) == 1
    if data == "cut short":
        assert "digits.tfrecord: " in completed.stderr and "truncated record at" in completed.stderr
    assert not settings_for(tmp_path / "outputs").metadata_path.exists()


def test_a_disk_without_room_for_the_run_is_refused_before_any_component(tmp_path):
    with small_filesystem(tmp_path / "disk", 8 * 2**20) as disk:
        completed = run_pipeline(disk)
        assert completed.returncode == 5
        (line,) = completed.stderr.strip().splitlines()
        assert line.startswith(f"error: not enough free space for a run in {disk}: about ")
        assert "running" not in completed.stdout
