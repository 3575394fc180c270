"""`make run`: prepares the offline sample if needed, runs the pipeline locally with one status
line per component, and ends with the eval accuracy, the blessing decision and the pushed model.

The full TFX log goes to outputs/logs/; set VERBOSE=1 to see it on the console too.
"""

import os
import time
import warnings

# Before TensorFlow and gRPC load: TensorFlow's C++ lines at start-up (CUDA stubs, "Unable to
# register cuDNN factory"), gRPC's C++ INFO lines (absl writes every level to stderr until it is
# initialised: "Got goaway" as the demo's server stops) and the Google Cloud libraries'
# FutureWarnings about Python 3.10 ask nothing of a user; errors that matter surface as Python
# exceptions, which the console shows.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
warnings.filterwarnings("ignore", category=FutureWarning)

from components.splits import TEST
from pipeline import data_source, demo, disk_space, image_profile, local_runner, report
from pipeline.console import log_to_file
from pipeline.progress import RunProgress
from pipeline.results import (
    RunSummary,
    UnchangedRun,
    ingested_spans,
    run_summary,
)
from pipeline.settings import Settings
from pipeline.stats import accuracy_text
from trainer.features import CONFIDENCE_THRESHOLD


def print_run(summary: RunSummary | UnchangedRun, seconds: float) -> None:
    cached = sum(component.state == "CACHED" for component in summary.components)
    print(
        f"\nPipeline run {summary.run_id} finished in {seconds:.0f} s "
        f"({len(summary.components)} components, {cached} from cache)."
    )


def print_unchanged(summary: UnchangedRun, settings: Settings) -> None:
    print(
        f"The Trainer's model, {summary.model_path}, is the last blessed one and was pushed "
        "(nothing changed since it was trained): nothing to evaluate, check or push.\n"
        f"Pushed model: none this run; {settings.serving_model_dir} is unchanged"
    )


def print_summary(summary: RunSummary, settings: Settings) -> None:
    if summary.spans != [0]:
        print(f"Trained and evaluated on spans {', '.join(map(str, summary.spans))}.")
    if summary.warm_start_model:
        print(
            f"Warm start from {summary.warm_start_model} "
            "(when its classes and layers match; the log says which)"
        )
    print(f"Test accuracy: {accuracy_text(summary.accuracy, summary.test_examples)}")
    print(
        "Per class (accuracy, test examples): "
        + ", ".join(
            f"{label}: {accuracy:.3f} ({summary.per_class_examples[label]})"
            for label, accuracy in summary.per_class_accuracy.items()
        )
    )
    missing = summary.classes_without_test_examples
    if missing:
        print(
            f"warning: the test split has no example of class(es) {', '.join(missing)}: "
            "the gate judged the model without them"
        )
    paired = summary.paired
    if paired:
        print(
            f"Against the last blessed model: {summary.accuracy_change:+.4f} accuracy; "
            f"{paired.baseline_only_correct} test examples only it gets right, "
            f"{paired.candidate_only_correct} only the candidate; one-sided McNemar "
            f"p = {paired.p_value:.3f} (a regression when below {settings.gates.regression_alpha})"
        )
    if summary.blessed:
        print(
            f"Blessing: BLESSED (test accuracy at least {settings.gates.accuracy_floor}"
            + (", no significant regression)" if paired else "; no blessed model to compare)")
        )
    else:
        print("Blessing: NOT BLESSED - " + "; ".join(summary.validation_failures))
    check = summary.serving_check
    if check and check.problems:
        print("Serving check: FAILED - " + "; ".join(check.problems))
    elif check:
        print(
            f"Serving check: passed (a model server loaded it in {check.load_seconds:.1f} s and "
            f"answered as the model does; batch-1 p50 {check.batch_1_p50_ms:.1f} ms over gRPC)"
        )
    if summary.pushed_path:
        print(f"Pushed model: {summary.pushed_path}")
    else:
        print(f"Pushed model: none this run; {settings.serving_model_dir} is unchanged")


def print_demo(summary: RunSummary, settings: Settings) -> None:
    images, labels = demo.read_split(summary.examples_uris, TEST, limit=demo.DEMO_DIGITS)
    result = demo.demonstrate(settings.model_name, settings.serving_model_dir, images, labels)
    tested = (
        "test accuracy"
        if result.images == summary.test_examples
        else f"accuracy on the first {result.images:,} test digits"
    )
    print(
        f"\nServed version {result.model_version} with the local TF Serving-compatible server on "
        f"{result.address} (gRPC), stopped again:\n"
        f"  {tested} {accuracy_text(result.accuracy, result.images)}\n"
        f"  latency p50: {result.batch_p50_ms:.1f} ms per request of {result.batch_size} images, "
        f"{result.single_p50_ms:.1f} ms for one image"
    )


def print_mismatches(decision: image_profile.Decision) -> None:
    """Names the class folders that look like the other image profile."""
    if decision.mismatches:
        print(
            f"Warning: with the {decision.profile.name} profile, these class folders look like "
            f"the other one: {', '.join(decision.mismatches)}. Set IMAGE_PROFILE to the "
            "profile that fits them (pipeline/image_profile.py)."
        )


def spans_to_ingest_first(source: data_source.DataSource, settings: Settings) -> list[int]:
    """Spans that training should read (the latest TRAIN_SPANS) but no run has ingested yet,
    oldest first; the run itself ingests the newest."""
    window = source.spans[-settings.train_spans :][:-1]
    ingested = ingested_spans(settings.metadata_path, settings.pipeline_name, source.example_gen_id)
    return [span for span in window if span not in ingested]


def run_with_progress(pipeline, settings: Settings) -> str | None:
    """Runs the pipeline, a line per component (pipeline/progress.py); returns its run id."""
    with RunProgress(settings.metadata_path, [component.id for component in pipeline.components]):
        return local_runner.run_pipeline(pipeline)


def main() -> int:
    settings = Settings.from_env()
    source = data_source.resolve(settings)
    disk_space.check_free_space(settings, source)
    decision = image_profile.decide(source, settings)
    image_profile.check_backbone(settings, decision)
    pipeline = local_runner.create_local_pipeline(settings, source, decision.profile)
    log_path = log_to_file(settings.log_dir, "run")
    print(
        f"Running pipeline {settings.pipeline_name} on DATA={settings.data} (full log: {log_path})"
    )
    print(decision.describe())
    print_mismatches(decision)
    started = time.monotonic()
    for span in spans_to_ingest_first(source, settings):
        print(f"Ingesting and validating span {span} first (training reads it too):")
        ingest = local_runner.create_local_pipeline(settings, source, ingest_span=span)
        run_with_progress(ingest, settings)
    summary = run_summary(settings.metadata_path, run_with_progress(pipeline, settings))
    print_run(summary, time.monotonic() - started)
    if isinstance(summary, UnchangedRun):
        print_unchanged(summary, settings)
        return 0
    print_summary(summary, settings)
    print_mismatches(decision)
    page, facts = report.write_report(summary, settings.report_dir)
    print(
        f"Confidence: calibrated by a temperature of {facts['temperature']:.2f} (validation "
        f"split); expected calibration error on the test split "
        f"{facts['expected_calibration_error_before']:.4f} before, "
        f"{facts['expected_calibration_error']:.4f} after"
    )
    if facts["unfamiliar_below"] > 0:
        print(
            f"Confidence: held under {CONFIDENCE_THRESHOLD} where the network's own top "
            f"probability is under {facts['unfamiliar_below']:.2f}: a picture unlike any digit "
            "it learnt"
        )
    print(f"Run report: {page}")
    if any(settings.serving_model_dir.glob("*/saved_model.pb")):
        print_demo(summary, settings)
    return 0


if __name__ == "__main__":
    local_runner.run_cli(main)
