"""Bad data stops the run before Transform and Trainer; the served model stays in place."""

import numpy as np

from components.mnist_sample import encode_png, load_sample
from tests.pipeline_runs import run_pipeline, served_versions, write_classes


def assert_stopped_at_the_gate(completed, *expected: str) -> None:
    assert completed.returncode == 3, completed.stderr[-3000:]
    assert "ValidationGate running" in completed.stdout
    assert "Transform running" not in completed.stdout
    assert "Data validation failed" in completed.stderr
    assert "nothing is trained or pushed" in completed.stderr
    for text in expected:
        assert text in completed.stderr


def test_drift_of_the_label_distribution_between_spans_stops_the_run(tmp_path):
    pixels, labels = load_sample(5000, seed=8)
    data, output_dir = tmp_path / "data", tmp_path / "outputs"
    write_classes(data / "span-1", pixels, labels, {"zero": 150, "one": 150})
    first = run_pipeline(output_dir, DATA=str(data), EPOCHS="2")
    assert first.returncode == 0, first.stderr[-3000:]
    versions = served_versions(output_dir)
    assert len(versions) == 1

    write_classes(data / "span-2", pixels, labels, {"zero": 270, "one": 30})  # 90 % zeros
    drifted = run_pipeline(output_dir, DATA=str(data), EPOCHS="2")
    assert_stopped_at_the_gate(
        drifted,
        "Data validation failed for span 2",
        "train split against span 1: feature 'class_name'",
        "Linfty distance",
    )
    assert served_versions(output_dir) == versions


def test_anomalies_against_a_reviewed_schema_stop_the_run(tmp_path):
    pixels, labels = load_sample(5000, seed=8)
    data = tmp_path / "data"
    write_classes(data, pixels, labels, {"zero": 60, "one": 60})
    (data / "two").mkdir()  # a class the reviewed schema does not know
    for index in np.flatnonzero(labels == 2)[:60]:
        (data / "two" / f"{index}.png").write_bytes(encode_png(pixels[index]))
    schema = tmp_path / "schema.pbtxt"
    schema.write_text(REVIEWED_SCHEMA)
    completed = run_pipeline(tmp_path / "outputs", DATA=str(data), SCHEMA=str(schema))
    assert_stopped_at_the_gate(
        completed, "train split: feature 'class_name'", "Unexpected string values", "two"
    )
    assert not served_versions(tmp_path / "outputs")


REVIEWED_SCHEMA = """
feature {
  name: "class_name"
  type: BYTES
  domain: "class_name"
  presence { min_fraction: 1.0 min_count: 1 }
  shape { dim { size: 1 } }
}
feature {
  name: "image"
  type: BYTES
  presence { min_fraction: 1.0 min_count: 1 }
  shape { dim { size: 1 } }
}
feature {
  name: "label"
  type: INT
  int_domain { min: 0 max: 1 }
  presence { min_fraction: 1.0 min_count: 1 }
  shape { dim { size: 1 } }
}
string_domain { name: "class_name" value: "one" value: "zero" }
"""
