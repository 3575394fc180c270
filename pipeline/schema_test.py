"""The reviewed schema (pipeline/schema/schema.pbtxt) against statistics TFDV computes on Beam
from TFRecords the tests write: real digits pass, each kind of bad data is named."""

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv

from components.data.codecs import encode_png
from components.data.sample import load_sample, make_example
from pipeline.infer_schema import class_names, curate
from pipeline.pipeline import statistics_options
from pipeline.settings import MNIST_SCHEMA
from trainer.features import CLASS_NAME_KEY, IMAGE_KEY, LABEL_KEY, MNIST_CLASS_NAMES

# TFDV computes image statistics only from 100 values on: enough digits to have them.
DIGITS = 200


@pytest.fixture(scope="module")
def examples() -> list[tf.train.Example]:
    pixels, labels = load_sample(DIGITS, seed=4)
    return [
        make_example(encode_png(image), int(label), MNIST_CLASS_NAMES[label])
        for image, label in zip(pixels, labels, strict=True)
    ]


def statistics(tmp_path, examples: list[tf.train.Example]):
    path = str(tmp_path / "examples.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for example in examples:
            writer.write(example.SerializeToString())
    return tfdv.generate_statistics_from_tfrecord(path, stats_options=statistics_options())


def anomalies(tmp_path, examples) -> dict[str, str]:
    schema = tfdv.load_schema_text(str(MNIST_SCHEMA))
    found = tfdv.validate_statistics(statistics(tmp_path, examples), schema)
    return {name: info.description for name, info in found.anomaly_info.items()}


def test_real_digits_pass(tmp_path, examples):
    assert anomalies(tmp_path, examples) == {}


def replaced(example: tf.train.Example, feature: str, values: list) -> tf.train.Example:
    changed = tf.train.Example()
    changed.CopyFrom(example)
    if not values:
        del changed.features.feature[feature]
    elif isinstance(values[0], int):
        changed.features.feature[feature].int64_list.value[:] = values
    else:
        changed.features.feature[feature].bytes_list.value[:] = values
    return changed


BAD_DATA = {
    "label out of range": (LABEL_KEY, [10], "Unexpectedly large value: 10"),
    "unknown class name": (CLASS_NAME_KEY, [b"ten"], "values missing from the schema: ten"),
    "empty image": (IMAGE_KEY, [b""], "supported images"),
    "corrupt image": (IMAGE_KEY, [b"not a png"], "supported images"),
    "two images": (IMAGE_KEY, [b"a", b"b"], "values"),
    "no image": (IMAGE_KEY, [], "not always present"),
}


@pytest.mark.parametrize("kind", BAD_DATA)
def test_each_kind_of_bad_data_is_an_anomaly_of_its_feature(tmp_path, examples, kind):
    feature, values, description = BAD_DATA[kind]
    bad = examples[:-3] + [replaced(example, feature, values) for example in examples[-3:]]
    found = anomalies(tmp_path, bad)
    assert list(found) == [feature]
    assert description in found[feature]


def test_make_schema_on_the_digits_gives_the_reviewed_schema(tmp_path, examples):
    train = statistics(tmp_path, examples)
    inferred = tfdv.infer_schema(train, infer_feature_shape=True)
    curated = curate(inferred, class_names(train))
    reviewed = tfdv.load_schema_text(str(MNIST_SCHEMA))
    assert {f.name: f for f in curated.feature} == {f.name: f for f in reviewed.feature}
    assert list(curated.string_domain) == list(reviewed.string_domain)
