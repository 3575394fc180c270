"""Which statistics the drift check compares with, and what the gate reports."""

from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.validation_gate import (
    CURRENT_KEY,
    STATISTICS_KEY,
    PreviousStatisticsStrategy,
    describe,
)
from tests.lineage import FAILED, Lineage


def previous(lineage: Lineage, statistics: list, current) -> list[int]:
    resolved = PreviousStatisticsStrategy().resolve_artifacts(
        lineage.store, {STATISTICS_KEY: statistics, CURRENT_KEY: [current]}
    )
    return [artifact.id for artifact in resolved[STATISTICS_KEY]]


def test_a_new_span_is_compared_with_the_latest_passed_statistics_of_an_earlier_span():
    lineage = Lineage()
    _, one = lineage.ingest(span=1)
    _, one_again = lineage.ingest(span=1)
    _, two = lineage.ingest(span=2)
    _, two_again = lineage.ingest(span=2)  # re-ingested with new files: still against span 1
    everything = [one, one_again, two, two_again]
    assert previous(lineage, everything[:3], current=two) == [one_again.id]
    assert previous(lineage, everything, current=two_again) == [one_again.id]


def test_statistics_the_gate_stopped_are_no_reference():
    lineage = Lineage()
    _, one = lineage.ingest(span=1)
    _, drifted = lineage.ingest(span=2, gate=FAILED)
    _, three = lineage.ingest(span=3, gate=None)  # being judged now
    assert previous(lineage, [one, drifted, three], current=three) == [one.id]


def test_without_spans_the_previous_run_is_the_reference_and_a_first_run_has_none():
    lineage = Lineage()
    _, first = lineage.ingest(span=0)
    _, second = lineage.ingest(span=0)
    _, third = lineage.ingest(span=0, gate=None)
    assert previous(lineage, [first, second, third], current=third) == [second.id]
    assert previous(lineage, [first], current=first) == []


def test_the_gate_names_data_problems_and_passes_over_schema_suggestions():
    found = anomalies_pb2.Anomalies()
    suggestion = found.anomaly_info["image"]
    suggestion.short_description = "Updated semantic domain"
    suggestion.reason.add(type=anomalies_pb2.AnomalyInfo.SEMANTIC_DOMAIN_UPDATE)
    problem = found.anomaly_info["label"]
    problem.short_description, problem.description = (
        "Out-of-range values",
        "Unexpectedly large value: 10.",
    )
    problem.reason.add(type=anomalies_pb2.AnomalyInfo.INT_TYPE_BIG_INT)
    assert describe(found, "eval split") == [
        "eval split: feature 'label': Out-of-range values (Unexpectedly large value: 10.)"
    ]
