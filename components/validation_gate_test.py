"""What the gate reports."""

from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.validation_gate import describe


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
