"""Bad data stops the run before Transform and Trainer; the served model stays in place."""

import shutil

import numpy as np

from components.data.codecs import encode_png
from components.data.sample import load_sample
from tests.pipeline_runs import run_pipeline, served_versions, write_classes


def assert_stopped_at_the_gate(completed, *expected: str) -> None:
    assert completed.returncode == 3, completed.stderr[-3000:]
    assert "ValidationGate running" in completed.stdout
    assert "Transform running" not in completed.stdout
    assert "Data validation failed" in completed.stderr
    assert "nothing is trained or pushed" in completed.stderr
    for text in expected:
        assert text in completed.stderr


def test_each_kind_of_bad_span_stops_the_run_and_the_served_model_stays(tmp_path):
    pixels, labels = load_sample(5000, seed=8)
    data, output_dir = tmp_path / "data", tmp_path / "outputs"
    schema = tmp_path / "schema.pbtxt"
    schema.write_text(REVIEWED_SCHEMA)

    def run():
        return run_pipeline(output_dir, DATA=str(data), SCHEMA=str(schema), EPOCHS="2")

    write_classes(data / "span-1", pixels, labels, {"zero": 150, "one": 150})
    first = run()
    assert first.returncode == 0, first.stderr[-3000:]
    versions = served_versions(output_dir)
    assert len(versions) == 1

    # Undecodable files beyond MAX_BAD_IMAGE_FRACTION (1 %): ExampleGen fails, naming them.
    write_classes(data / "span-2", pixels, labels, {"zero": 150, "one": 150})
    corrupt = {
        "truncated.png": encode_png(pixels[0])[:40],
        "text.png": b"hello",
        "empty.jpg": b"",
        "short.png": encode_png(pixels[1])[:60],
    }
    for name, content in corrupt.items():
        (data / "span-2" / "zero" / name).write_bytes(content)
    bad_images = run()
    assert bad_images.returncode == 3, bad_images.stderr[-3000:]
    assert "4 of 304 input files are not decodable images" in bad_images.stderr
    assert all(str(data / "span-2" / "zero" / name) in bad_images.stderr for name in corrupt)
    assert "ValidationGate running" not in bad_images.stdout
    assert served_versions(output_dir) == versions
    shutil.rmtree(data / "span-2")  # the bad drop is taken back

    write_classes(data / "span-3", pixels, labels, {"zero": 270, "one": 30})  # 90 % zeros
    assert_stopped_at_the_gate(
        run(),
        "Data validation failed for span 3",
        "train split against span 1: feature 'class_name'",
        "Linfty distance",
    )
    assert served_versions(output_dir) == versions
    shutil.rmtree(data / "span-3")

    write_classes(data / "span-4", pixels, labels, {"zero": 150, "one": 150})
    (data / "span-4" / "two").mkdir()  # a class the reviewed schema does not know
    for index in np.flatnonzero(labels == 2)[:60]:
        (data / "span-4" / "two" / f"{index}.png").write_bytes(encode_png(pixels[index]))
    assert_stopped_at_the_gate(
        run(), "train split: feature 'class_name'", "Unexpected string values", "two"
    )
    assert served_versions(output_dir) == versions


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
