"""ValidationGate: stops the run before Transform and Trainer when the data is bad.

It fails, with a readable summary, when ExampleValidator found anomalies in any split, or when
the distribution of class names in the train split moved further than an L-infinity bound
from the previous span's (TFDV's drift comparator). The run then ends with a non-zero exit
and nothing is trained or pushed.
"""

import os

import tensorflow_data_validation as tfdv
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2
from tfx import v1 as tfx
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.components.common import resolver
from tfx.types import artifact_utils
from tfx.utils import io_utils

from trainer.features import CLASS_NAME_KEY

ANOMALIES_FILE = "SchemaDiff.pb"  # ExampleValidator's file in each Split-<name>/ folder
STATISTICS_KEY, CURRENT_KEY = "statistics", "current"
PASSED_STATES = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)


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


class PreviousStatisticsStrategy(resolver.ResolverStrategy):
    """Inputs `statistics` (all) and `current` (this run's); outputs the statistics to compare
    with, among those that passed the gate: the latest of the previous span when the data comes
    in spans, else the latest other than the current ones, or none. A re-run on unchanged data
    thus gives the gate the same inputs (it stays cached), and a first run is not recorded as a
    failed resolver, as with TFX's LatestArtifactStrategy."""

    def resolve_artifacts(self, store, input_dict: dict) -> dict:
        current = input_dict[CURRENT_KEY]
        current_ids = {artifact.id for artifact in current}
        current_span = max((artifact.span for artifact in current), default=0)
        others = [a for a in input_dict[STATISTICS_KEY] if a.id not in current_ids]
        passed = passed_statistics(store, [a.id for a in others]) if others else set()
        older = [a for a in others if a.id in passed]
        earlier_spans = [a for a in older if a.span < current_span]
        candidates = earlier_spans or older
        return {
            STATISTICS_KEY: [max(candidates, key=lambda a: (a.span, a.id))] if candidates else [],
            CURRENT_KEY: current,
        }


class DataValidationError(RuntimeError):
    """The data failed validation; the message lists what is wrong."""


# Not a problem with the data: TFDV suggesting a semantic domain (e.g. image_domain, from the
# image statistics) that the schema does not declare.
SUGGESTIONS = {anomalies_pb2.AnomalyInfo.SEMANTIC_DOMAIN_UPDATE}


def describe(anomalies: anomalies_pb2.Anomalies, where: str) -> list[str]:
    """One readable line per feature with a problem."""
    return [
        f"{where}: feature {name!r}: {info.short_description or info.description}"
        + (f" ({info.description})" if info.short_description and info.description else "")
        for name, info in sorted(anomalies.anomaly_info.items())
        if {reason.type for reason in info.reason} - SUGGESTIONS
    ]


def split_anomalies(anomalies_uri: str, split_names: list[str]) -> list[str]:
    problems = []
    for split in split_names:
        path = os.path.join(anomalies_uri, f"Split-{split}", ANOMALIES_FILE)
        found = anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path))
        problems += describe(found, f"{split} split")
    return problems


def class_drift(
    current, previous, schema: schema_pb2.Schema, threshold: float, against: str
) -> list[str]:
    """Drift of the class-name distribution (train split) beyond `threshold`, L-infinity, from
    the `previous` statistics (`against` names them)."""
    schema = schema_pb2.Schema.FromString(schema.SerializeToString())
    tfdv.get_feature(schema, CLASS_NAME_KEY).drift_comparator.infinity_norm.threshold = threshold
    found = tfdv.validate_statistics(current, schema, previous_statistics=previous)
    drift = anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH
    return [
        f"train split against {against}: feature {name!r}: {reason.description}"
        for name, info in sorted(found.anomaly_info.items())
        for reason in info.reason
        if reason.type == drift
    ]


@tfx.dsl.components.component
def ValidationGate(  # noqa: N802 (a TFX component, named like TFX's)
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    max_label_drift: tfx.dsl.components.Parameter[float],
    previous_statistics: tfx.dsl.components.InputArtifact[  # optional: None on a first run
        tfx.types.standard_artifacts.ExampleStatistics
    ] = None,
) -> None:
    problems = split_anomalies(
        anomalies.uri, artifact_utils.decode_split_names(anomalies.split_names)
    )
    if previous_statistics is not None and previous_statistics.id != statistics.id:
        problems += class_drift(
            stats_artifact_utils.load_statistics(statistics, "train").proto(),
            stats_artifact_utils.load_statistics(previous_statistics, "train").proto(),
            tfdv.load_schema_text(os.path.join(schema.uri, "schema.pbtxt")),
            max_label_drift,
            against=(
                f"span {previous_statistics.span}"
                if previous_statistics.span != statistics.span
                else "the previous run's data"
            ),
        )
    if problems:
        which = f" for span {statistics.span}" if statistics.span else ""
        raise DataValidationError(
            f"Data validation failed{which}; nothing is trained or pushed:\n  "
            + "\n  ".join(problems)
        )
