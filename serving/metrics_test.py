"""The metrics' text: make monitor's distances as gauges beside their thresholds."""

import json

from prometheus_client.parser import text_string_to_metric_families

from serving.metrics import INPUT_DRIFT, Metrics


def test_make_monitors_distances_are_gauges_beside_their_thresholds(tmp_path):
    drift_file = tmp_path / "drift.json"
    metrics = Metrics(drift_file)
    assert INPUT_DRIFT not in metrics.text()  # no monitor run yet
    drift_file.write_text(
        json.dumps(
            {
                "model_name": "mnist_cnn",
                "version": "7",
                "features": [
                    {
                        "feature": "ink_share",
                        "measure": "JENSEN_SHANNON_DIVERGENCE",
                        "distance": 0.25,
                        "threshold": 0.1,
                    },
                    {"feature": "format", "measure": "L_INFTY", "distance": 0.0, "threshold": 0.1},
                ],
            }
        )
    )
    families = {f.name: f for f in text_string_to_metric_families(metrics.text())}
    gauges = {
        name: {s.labels["feature"]: s.value for s in families[name].samples}
        for name in (INPUT_DRIFT, f"{INPUT_DRIFT}_threshold")
    }
    assert gauges[INPUT_DRIFT] == {"ink_share": 0.25, "format": 0.0}
    assert gauges[f"{INPUT_DRIFT}_threshold"] == {"ink_share": 0.1, "format": 0.1}
    assert families[INPUT_DRIFT].type == "gauge"
    assert families[INPUT_DRIFT].samples[0].labels["version"] == "7"
    drift_file.write_text("{half a file")
    assert INPUT_DRIFT not in metrics.text()  # no gauges rather than an error
