"""`make run DATA=...` on data stored the way image data sets are stored, written by the tests."""

import io
import socket
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from PIL import Image

from components.data.codecs import encode_png, write_idx
from components.data.sample import load_sample
from components.splits import TEST, TRAIN, VALIDATION
from pipeline.demo import read_split
from pipeline.results import run_summary
from pipeline.stats import accuracy_text
from tests.pipeline_runs import run_pipeline, settings_for
from trainer.export import read_class_names
from trainer.features import (
    CLASS_NAME_KEY,
    CLASS_NAME_OUTPUT,
    IMAGE_KEY,
    IMAGES_INPUT,
    LABEL_KEY,
    SERVING_IMAGE_SIGNATURE,
)

# Digits 0 and 1 from the sample, as two classes with names that are not digits.
CLASSES = {"one": 1, "zero": 0}


@pytest.fixture(scope="module")
def digits():
    pixels, labels = load_sample(5000, seed=7)
    return pixels, labels


def test_make_schema_then_class_folders_train_a_model_that_names_its_classes(tmp_path, digits):
    pixels, labels = digits
    for name, digit in CLASSES.items():
        folder = tmp_path / "shapes" / name
        folder.mkdir(parents=True)
        for count, index in enumerate(np.flatnonzero(labels == digit)[:150]):
            if count % 10:
                (folder / f"{index}.png").write_bytes(encode_png(pixels[index]))
            else:  # a GIF in ten, an advertised format TensorFlow decodes only to colour
                Image.fromarray(pixels[index]).save(folder / f"{index}.gif", format="GIF")
    output_dir, data = tmp_path / "outputs", str(tmp_path / "shapes")

    inferred = run_pipeline(output_dir, "pipeline.infer_schema", DATA=data)  # make schema
    assert inferred.returncode == 0, inferred.stderr[-4000:]
    schema_path = settings_for(output_dir).schema_output_dir / "schema.pbtxt"
    assert f"Wrote {schema_path}" in inferred.stdout
    schema = tfdv.load_schema_text(str(schema_path))
    label = tfdv.get_feature(schema, LABEL_KEY).int_domain
    assert (label.min, label.max) == (0, len(CLASSES) - 1)
    assert list(tfdv.get_domain(schema, CLASS_NAME_KEY).value) == sorted(CLASSES)
    assert tfdv.get_feature(schema, IMAGE_KEY).image_domain.minimum_supported_image_fraction == 1

    completed = run_pipeline(output_dir, DATA=data, SCHEMA=str(schema_path), EPOCHS="6")
    assert completed.returncode == 0, completed.stderr[-4000:]
    summary = run_summary(settings_for(output_dir).metadata_path)
    assert "ImportSchemaGen" in {c.name for c in summary.components}
    assert summary.blessed and summary.pushed_path
    assert read_class_names(summary.pushed_path) == sorted(CLASSES)
    held_out = [encode_png(pixels[i]) for i in np.flatnonzero(labels == 0)[-20:]]
    gif = io.BytesIO()
    Image.fromarray(pixels[np.flatnonzero(labels == 0)[-21]]).save(gif, format="GIF")
    held_out.append(gif.getvalue())
    model = tf.saved_model.load(str(summary.pushed_path))
    names = model.signatures[SERVING_IMAGE_SIGNATURE](**{IMAGES_INPUT: tf.constant(held_out)})
    assert np.mean(names[CLASS_NAME_OUTPUT].numpy() == b"zero") >= 0.9


def test_test_data_replaces_the_idx_files_own_test_split(tmp_path, digits):
    """IDX files with official names keep their train split (validation carved out of it);
    TEST_DATA, another IDX folder like ../shared/mnist-dev, is the test split instead of t10k."""
    pixels, labels = digits
    data, dev = tmp_path / "idx", tmp_path / "dev"
    data.mkdir()
    dev.mkdir()
    write_idx(data / "train-images-idx3-ubyte.gz", pixels[:800])
    write_idx(data / "train-labels-idx1-ubyte.gz", labels[:800])
    write_idx(data / "t10k-images-idx3-ubyte.gz", pixels[800:1000])
    write_idx(data / "t10k-labels-idx1-ubyte.gz", labels[800:1000])
    write_idx(dev / "dev-images-idx3-ubyte.gz", pixels[1000:1300])
    write_idx(dev / "dev-labels-idx1-ubyte.gz", labels[1000:1300])
    output_dir = tmp_path / "outputs"
    completed = run_pipeline(output_dir, DATA=str(data), TEST_DATA=str(dev), EPOCHS="2")
    assert completed.returncode == 0, completed.stderr[-4000:]
    summary = run_summary(settings_for(output_dir).metadata_path)
    assert summary.test_examples == 300
    images, test_labels = read_split(summary.examples_uris, TEST)
    assert sorted(images) == sorted(encode_png(p) for p in pixels[1000:1300])
    assert sorted(test_labels.tolist()) == sorted(labels[1000:1300].tolist())
    trained = [read_split(summary.examples_uris, split)[0] for split in (TRAIN, VALIDATION)]
    assert all(trained) and sorted(trained[0] + trained[1]) == sorted(map(encode_png, pixels[:800]))
    assert f"Test accuracy: {accuracy_text(summary.accuracy, 300)}" in completed.stdout


def test_unusable_test_data_fails_before_any_component(tmp_path):
    missing = tmp_path / "no-such-test-set"
    completed = run_pipeline(tmp_path / "outputs", TEST_DATA=str(missing))
    assert completed.returncode == 2
    assert f"TEST_DATA: {missing} does not exist" in completed.stderr
    assert not settings_for(tmp_path / "outputs").metadata_path.exists()


def test_full_mnist_offline_fails_within_seconds_naming_the_alternatives(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        mirror = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    started = time.monotonic()
    completed = run_pipeline(
        tmp_path / "outputs", DATA="mnist", MNIST_MIRROR=mirror, XDG_CACHE_HOME=str(tmp_path)
    )
    assert completed.returncode == 2
    assert "DATA=mnist-sample" in completed.stderr and mirror in completed.stderr
    assert time.monotonic() - started < 60  # mostly the interpreter importing TFX


@pytest.mark.parametrize(
    "layout", ["missing", "empty", "loose files"], ids=lambda layout: layout.replace(" ", "-")
)
def test_unusable_data_folder_is_named(tmp_path, layout):
    data = tmp_path / "data"
    if layout != "missing":
        data.mkdir()
    if layout == "loose files":
        (data / "a.png").write_bytes(b"")
    completed = run_pipeline(tmp_path / "outputs", DATA=str(data))
    assert completed.returncode == 2
    assert str(data) in completed.stderr
