"""Spans: ExampleGen executors that record them where TFX reads them, and the resolver strategy
that picks the spans to train on.

TFX 1.16's ExampleGen driver records span and version as custom properties only, while
StatisticsGen (which copies `examples.span` onto its statistics) and TFX's span-based input
resolution read the typed ones: without the executors below every span reads 0.
"""

from typing import Any

from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx import v1 as tfx
from tfx.components.example_gen import utils
from tfx.components.example_gen.import_example_gen.executor import (
    Executor as ImportExecutor,
)
from tfx.dsl.components.base import executor_spec
from tfx.dsl.components.common import resolver
from tfx.types import standard_component_specs

from components.splits import ValidationCarvingExecutor
from components.validation_gate import ValidationGate

EXAMPLES_KEY = standard_component_specs.EXAMPLES_KEY
STATISTICS_KEY = "statistics"  # the gate's input
PASSED_STATES = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)


def record_span_and_version(examples: list[types.Artifact], exec_properties: dict) -> None:
    for artifact in examples:
        artifact.span = exec_properties[utils.SPAN_PROPERTY_NAME]
        if exec_properties.get(utils.VERSION_PROPERTY_NAME) is not None:
            artifact.version = exec_properties[utils.VERSION_PROPERTY_NAME]


class SpanRecordingExecutor:
    """Mixin for an ExampleGen executor class: records span and version after writing."""

    def Do(  # noqa: N802 (TFX's name)
        self, input_dict: dict, output_dict: dict[str, list[types.Artifact]], exec_properties: dict
    ) -> Any:
        result = super().Do(input_dict, output_dict, exec_properties)
        record_span_and_version(output_dict[EXAMPLES_KEY], exec_properties)
        return result


class ImportExampleGenExecutor(SpanRecordingExecutor, ValidationCarvingExecutor, ImportExecutor):
    """TFX's ImportExampleGen executor (TFRecords of tf.Examples), recording spans and carving
    validation out of a train split given without one."""


IMPORT_EXAMPLE_GEN_ID = "ImportExampleGen"  # its node id, as TFX's component would have


class SpanImportExampleGen(tfx.components.ImportExampleGen):
    """TFX's ImportExampleGen with an executor that records spans and carves validation out
    (ImportExampleGenExecutor); its node id stays TFX's (IMPORT_EXAMPLE_GEN_ID)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(ImportExampleGenExecutor)


def passed_statistics(store, statistics_ids: list[int]) -> set[int]:
    """The statistics among `statistics_ids` that a ValidationGate execution passed (its
    `statistics` input, and it completed or was reused from the cache)."""
    events = [
        event
        for event in store.get_events_by_artifact_ids(statistics_ids)
        if event.type == metadata_store_pb2.Event.INPUT
        and event.path.steps
        and event.path.steps[0].key == STATISTICS_KEY
    ]
    passed = {
        execution.id
        for execution in store.get_executions_by_id({event.execution_id for event in events})
        if execution.type.endswith(ValidationGate.__name__)
        and execution.last_known_state in PASSED_STATES
    }
    return {event.artifact_id for event in events if event.execution_id in passed}


def passed_examples(store, examples_ids: list[int]) -> set[int]:
    """The Examples among `examples_ids` whose StatisticsGen statistics passed the gate."""
    read = [
        event
        for event in store.get_events_by_artifact_ids(examples_ids)
        if event.type == metadata_store_pb2.Event.INPUT
    ]
    statistics_gens = {
        execution.id
        for execution in store.get_executions_by_id({event.execution_id for event in read})
        if execution.type.endswith("StatisticsGen")
    }
    examples_of = {e.execution_id: e.artifact_id for e in read if e.execution_id in statistics_gens}
    written = [
        event
        for event in store.get_events_by_execution_ids(list(examples_of))
        if event.type == metadata_store_pb2.Event.OUTPUT
    ]
    passed = (
        passed_statistics(store, [event.artifact_id for event in written]) if written else set()
    )
    return {examples_of[e.execution_id] for e in written if e.artifact_id in passed}


class LatestValidatedSpansStrategy(resolver.ResolverStrategy):
    """Input `examples` (every ExampleGen output); outputs the latest `num_spans` spans among
    the Examples that passed the validation gate, the latest version of each (by version, then
    artifact id), oldest span first. Unlike TFX's `rolling_range`, a span the gate stopped
    never reaches the Trainer, also in later runs."""

    def __init__(self, num_spans: int):
        self._num_spans = num_spans

    def resolve_artifacts(self, store, input_dict: dict) -> dict:
        examples = input_dict[EXAMPLES_KEY]
        passed = passed_examples(store, [a.id for a in examples]) if examples else set()
        latest: dict[int, types.Artifact] = {}
        for artifact in examples:
            known = latest.get(artifact.span)
            if artifact.id in passed and (
                known is None or (artifact.version, artifact.id) > (known.version, known.id)
            ):
                latest[artifact.span] = artifact
        spans = sorted(latest)[-self._num_spans :]
        return {EXAMPLES_KEY: [latest[span] for span in spans]}
