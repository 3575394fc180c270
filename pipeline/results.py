"""What the latest pipeline run produced, read back from ML Metadata and the artifacts."""

import dataclasses
from pathlib import Path

import tensorflow_model_analysis as tfma
from google.protobuf import text_format
from ml_metadata import errors, metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.dsl.compiler.constants import PIPELINE_RUN_CONTEXT_TYPE_NAME

from components.paired_regression import BASELINE_ONLY_CORRECT, CANDIDATE_ONLY_CORRECT, P_VALUE
from pipeline.local_runner import sqlite_metadata
from pipeline.pipeline import ACCURACY_METRIC
from pipeline.progress import node_id
from trainer.export import read_class_names
from trainer.features import LABEL_KEY


@dataclasses.dataclass
class PairedComparison:
    """The regression gate's numbers: test examples only one of the two models gets right."""

    baseline_only_correct: int
    candidate_only_correct: int
    p_value: float  # one-sided McNemar: the candidate is worse


@dataclasses.dataclass
class ServingCheck:
    """The serving check's verdict (components/serving_check.py)."""

    problems: list[str]  # empty: a model server loaded the candidate and answered as it does
    load_seconds: float | None
    batch_1_p50_ms: float | None


@dataclasses.dataclass
class ComponentRun:
    name: str  # the node id (the class name unless the pipeline gave it another with with_id)
    # COMPLETE (ran now), CACHED (reused an earlier execution's outputs), or FAILED: TFX's
    # LatestArtifactStrategy with nothing to resolve yet (a first run's statistics and push).
    state: str


@dataclasses.dataclass
class RunSummary:
    run_id: str
    components: list[ComponentRun]
    accuracy: float
    accuracy_change: float | None  # against the baseline (last blessed model), when there was one
    paired: PairedComparison | None  # against the same baseline
    per_class_accuracy: dict[int, float]
    per_class_examples: dict[int, int]  # test examples of each class
    test_examples: int
    blessed: bool
    validation_failures: list[str]
    pushed_path: Path | None  # the version folder written by this run, None when not pushed
    artifact_uris: dict[str, Path]  # "<component>.<artifact type>" -> where it lies
    # The Examples trained and tested on (Split-train/, Split-validation/, Split-test/), oldest
    # span first.
    examples_uris: list[Path]
    spans: list[int]
    warm_start_model: Path | None  # the blessed model the Trainer started from (WARM_START=1)
    class_names: list[str]  # the trained model's, in class id order
    serving_check: ServingCheck | None = None  # None where the run had none

    @property
    def classes_without_test_examples(self) -> list[str]:
        """Classes the model knows that the test split has no example of (no per-class slice)."""
        return [n for i, n in enumerate(self.class_names) if i not in self.per_class_accuracy]


@dataclasses.dataclass
class UnchangedRun:
    """A run whose Trainer gave the last blessed model again, which the last push wrote (nothing
    changed since it was trained): the Evaluator, the serving check and the Pusher did not run
    (components/candidate_check.py)."""

    run_id: str
    components: list[ComponentRun]
    model_path: Path


def _state_name(execution: metadata_store_pb2.Execution) -> str:
    return metadata_store_pb2.Execution.State.Name(execution.last_known_state)


def _run_outputs(store, component: dict[int, str]) -> dict[str, metadata_store_pb2.Artifact]:
    """Every output artifact of the executions `component` names (by node id), keyed
    "<node id>.<artifact type>", e.g. "Transform.TransformGraph"."""
    events = [
        e
        for e in store.get_events_by_execution_ids(list(component))
        if e.type == metadata_store_pb2.Event.OUTPUT
    ]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    type_names = {t.id: t.name for t in store.get_artifact_types()}
    return {
        f"{component[e.execution_id]}.{type_names[artifacts[e.artifact_id].type_id]}": artifacts[
            e.artifact_id
        ]
        for e in events
    }


def _inputs(store, execution_id: int, type_name: str) -> list[metadata_store_pb2.Artifact]:
    """The artifacts of one type an execution read."""
    events = [
        e
        for e in store.get_events_by_execution_ids([execution_id])
        if e.type == metadata_store_pb2.Event.INPUT
    ]
    artifact_type = store.get_artifact_type(type_name)
    found = store.get_artifacts_by_id([e.artifact_id for e in events])
    return [a for a in found if a.type_id == artifact_type.id]


def _span(artifact: metadata_store_pb2.Artifact) -> int:
    return artifact.custom_properties["span"].int_value  # as ExampleGen's driver records it


def _metric(metrics: dict, name: str) -> float:
    return metrics[""][""][name]["doubleValue"]


def _paired(metrics: dict) -> PairedComparison | None:
    names = [f"{name}_diff" for name in (BASELINE_ONLY_CORRECT, CANDIDATE_ONLY_CORRECT, P_VALUE)]
    if names[-1] not in metrics[""][""]:
        return None
    baseline_only, candidate_only, p_value = (_metric(metrics, name) for name in names)
    return PairedComparison(int(baseline_only), int(candidate_only), p_value)


def _open_store(metadata_path: Path) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(sqlite_metadata(metadata_path))


def ingested_spans(metadata_path: Path, pipeline_name: str, example_gen_id: str) -> set[int]:
    """The spans that the pipeline's ExampleGen has read so far."""
    if not metadata_path.exists():
        return set()
    store = _open_store(metadata_path)
    node = store.get_context_by_type_and_name("node", f"{pipeline_name}.{example_gen_id}")
    if node is None:
        return set()
    try:  # a first run killed as it began leaves the node but no Examples type yet
        examples_type = store.get_artifact_type(tfx.types.standard_artifacts.Examples.TYPE_NAME)
    except errors.NotFoundError:
        return set()
    return {
        _span(artifact)
        for artifact in store.get_artifacts_by_context(node.id)
        if artifact.type_id == examples_type.id
    }


def _run(store, metadata_path: Path, run_id: str | None) -> metadata_store_pb2.Context:
    """The pipeline run `run_id`, or the most recent one."""
    runs = [
        context
        for context in store.get_contexts_by_type(PIPELINE_RUN_CONTEXT_TYPE_NAME)
        if run_id in (None, context.name)
    ]
    if not runs:
        raise LookupError(f"No pipeline run {run_id or ''} recorded in {metadata_path}")
    return max(runs, key=lambda context: context.create_time_since_epoch)


def _validation_failures(evaluation_uri: str) -> list[str]:
    """The Evaluator's failed thresholds, one line each."""
    validation = tfma.load_validation_result(evaluation_uri)
    return [
        ("change of " if f.metric_key.is_diff else "")
        + f"{f.metric_key.name} = {f.metric_value.double_value.value:+.4f} fails "
        + text_format.MessageToString(f.metric_threshold, as_one_line=True)
        for details in validation.metric_validations_per_slice
        for f in details.failures
    ]


def _serving_check(infra: metadata_store_pb2.Artifact | None) -> ServingCheck | None:
    if infra is None:
        return None
    properties = infra.custom_properties

    def number(name: str) -> float | None:
        return properties[name].double_value if name in properties else None

    return ServingCheck(
        problems=[p for p in properties["problems"].string_value.split("\n") if p],
        load_seconds=number("load_seconds"),
        batch_1_p50_ms=number("batch_1_p50_ms"),
    )


def _pushed_path(pushed: metadata_store_pb2.Artifact) -> Path | None:
    if not pushed.custom_properties["pushed"].int_value:
        return None
    return Path(pushed.custom_properties["pushed_destination"].string_value)


def run_summary(metadata_path: Path, run_id: str | None = None) -> RunSummary | UnchangedRun:
    """Summary of the run `run_id` (by default the most recent) recorded in the pipeline's
    SQLite metadata store."""
    if not metadata_path.exists():
        raise FileNotFoundError(f"No metadata store at {metadata_path}: run the pipeline first.")
    store = _open_store(metadata_path)
    run = _run(store, metadata_path, run_id)
    executions = sorted(store.get_executions_by_context(run.id), key=lambda e: e.id)
    node_ids = {execution.id: node_id(store, execution.id) for execution in executions}
    components = [ComponentRun(node_ids[e.id], _state_name(e)) for e in executions]
    outputs = _run_outputs(store, node_ids)
    executed = {node: execution for execution, node in node_ids.items()}
    if "Evaluator" not in executed:
        return UnchangedRun(run.name, components, Path(outputs["Trainer.Model"].uri))
    evaluated = sorted(
        _inputs(store, executed["Evaluator"], tfx.types.standard_artifacts.Examples.TYPE_NAME),
        key=_span,
    )
    base_models = _inputs(store, executed["Trainer"], tfx.types.standard_artifacts.Model.TYPE_NAME)
    evaluation_uri = outputs["Evaluator.ModelEvaluation"].uri
    slices = tfma.load_eval_result(evaluation_uri).slicing_metrics
    overall = next(m for key, m in slices if key == ())
    per_class = dict(
        sorted((key[0][1], m) for key, m in slices if len(key) == 1 and key[0][0] == LABEL_KEY)
    )
    diff = f"{ACCURACY_METRIC}_diff"
    return RunSummary(
        run_id=run.name,
        components=components,
        accuracy=_metric(overall, ACCURACY_METRIC),
        accuracy_change=_metric(overall, diff) if diff in overall[""][""] else None,
        paired=_paired(overall),
        per_class_accuracy={label: _metric(m, ACCURACY_METRIC) for label, m in per_class.items()},
        per_class_examples={
            label: int(_metric(m, "example_count")) for label, m in per_class.items()
        },
        test_examples=int(_metric(overall, "example_count")),
        blessed=bool(outputs["Evaluator.ModelBlessing"].custom_properties["blessed"].int_value),
        validation_failures=_validation_failures(evaluation_uri),
        pushed_path=_pushed_path(outputs["Pusher.PushedModel"]),
        artifact_uris={key: Path(artifact.uri) for key, artifact in outputs.items()},
        examples_uris=[Path(artifact.uri) for artifact in evaluated],
        spans=[_span(artifact) for artifact in evaluated],
        warm_start_model=Path(base_models[0].uri) if base_models else None,
        class_names=read_class_names(Path(outputs["Trainer.Model"].uri) / "Format-Serving") or [],
        serving_check=_serving_check(outputs.get("ServingValidator.InfraBlessing")),
    )
