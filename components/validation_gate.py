"""ValidationGate: stops the run before Transform and Trainer when the data is bad.

It fails, with a readable summary, when ExampleValidator found anomalies in any split, or when
the distribution of class names in the train split moved further than an L-infinity bound
from the latest data that passed the gate before this run (TFDV's drift comparator): the
previous span's, or the previous run's when the data has no spans. The run then ends with a
non-zero exit and nothing is trained or pushed.
"""

import os

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.types.experimental.simple_artifacts import Statistics
from tfx.utils import io_utils

from trainer.features import CLASS_NAME_KEY

ANOMALIES_FILE = "SchemaDiff.pb"  # ExampleValidator's file in each Split-<name>/ folder
TRAIN_STATISTICS = os.path.join("Split-train", "FeatureStats.pb")  # as StatisticsGen writes


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


def train_statistics(uri: str):
    """The train split's statistics in a StatisticsGen output or a gate's validated copy."""
    return tfdv.load_stats_binary(os.path.join(uri, TRAIN_STATISTICS))


@tfx.dsl.components.component
def ValidationGate(  # noqa: N802 (a TFX component, named like TFX's)
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    validated_statistics: tfx.dsl.components.OutputArtifact[Statistics],
    max_label_drift: tfx.dsl.components.Parameter[float],
    previous_statistics: tfx.dsl.components.InputArtifact[Statistics] = None,  # none at first
) -> None:
    """Raises DataValidationError for bad data; passed data's train statistics are copied to
    `validated_statistics` (with its span), which the next run's drift check reads. A failed
    gate writes none, so its data is never the reference (pipeline/resolvers.py)."""
    problems = split_anomalies(
        anomalies.uri, artifact_utils.decode_split_names(anomalies.split_names)
    )
    span = statistics.span
    if previous_statistics is not None:
        previous_span = previous_statistics.get_int_custom_property("span")
        problems += class_drift(
            train_statistics(statistics.uri),
            train_statistics(previous_statistics.uri),
            tfdv.load_schema_text(os.path.join(schema.uri, "schema.pbtxt")),
            max_label_drift,
            against=f"span {previous_span}" if previous_span != span else "the previous run's data",
        )
    if problems:
        which = f" for span {span}" if span else ""
        raise DataValidationError(
            f"Data validation failed{which}; nothing is trained or pushed:\n  "
            + "\n  ".join(problems)
        )
    io_utils.copy_file(
        os.path.join(statistics.uri, TRAIN_STATISTICS),
        os.path.join(validated_statistics.uri, TRAIN_STATISTICS),
    )
    validated_statistics.set_int_custom_property("span", span)
