import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.mnist_sample import make_example
from trainer.export import export_model, read_class_names
from trainer.features import (
    CLASS_ID_OUTPUT,
    CLASS_NAME_OUTPUT,
    EXAMPLES_INPUT,
    IMAGES_INPUT,
    PROBABILITIES_OUTPUT,
    SERVING_DEFAULT_SIGNATURE,
    SERVING_IMAGE_SIGNATURE,
)
from trainer.model import build_model

CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, transform_output):
    path = tmp_path_factory.mktemp("model")
    export_model(build_model(len(CLASS_NAMES), 1e-3), transform_output, str(path), CLASS_NAMES)
    return path


@pytest.fixture(scope="module")
def saved_model(export_dir):
    return tf.saved_model.load(str(export_dir))


def test_class_names_travel_as_an_asset(export_dir):
    assert read_class_names(export_dir) == CLASS_NAMES


def test_signatures_take_string_batches_under_their_contract_names(saved_model):
    expected_inputs = {
        SERVING_DEFAULT_SIGNATURE: EXAMPLES_INPUT,
        SERVING_IMAGE_SIGNATURE: IMAGES_INPUT,
    }
    assert set(saved_model.signatures) == set(expected_inputs)
    for name, input_name in expected_inputs.items():
        _, inputs = saved_model.signatures[name].structured_input_signature
        assert list(inputs) == [input_name]
        assert inputs[input_name].dtype == tf.string
        assert inputs[input_name].shape.as_list() == [None]
        outputs = saved_model.signatures[name].structured_outputs
        assert outputs[PROBABILITIES_OUTPUT].dtype == tf.float32
        assert outputs[CLASS_ID_OUTPUT].dtype == tf.int64
        assert outputs[CLASS_NAME_OUTPUT].dtype == tf.string


def test_both_signatures_agree_on_raw_examples_and_image_bytes(saved_model, png_digits, digits):
    examples = [
        make_example(png, int(label), str(label)).SerializeToString()
        for png, label in zip(png_digits[:6], digits[1][:6], strict=True)
    ]
    from_examples = saved_model.signatures[SERVING_DEFAULT_SIGNATURE](
        **{EXAMPLES_INPUT: tf.constant(examples)}
    )
    from_images = saved_model.signatures[SERVING_IMAGE_SIGNATURE](
        **{IMAGES_INPUT: tf.constant(png_digits[:6])}
    )
    assert from_examples[PROBABILITIES_OUTPUT].shape == (6, len(CLASS_NAMES))
    assert from_examples[CLASS_ID_OUTPUT].shape == (6,)
    np.testing.assert_allclose(
        from_examples[PROBABILITIES_OUTPUT], from_images[PROBABILITIES_OUTPUT], rtol=1e-6
    )
    for key in (CLASS_ID_OUTPUT, CLASS_NAME_OUTPUT):
        np.testing.assert_array_equal(from_examples[key], from_images[key])
    names = [CLASS_NAMES[i].encode() for i in from_images[CLASS_ID_OUTPUT].numpy()]
    assert from_images[CLASS_NAME_OUTPUT].numpy().tolist() == names


def test_image_signature_accepts_rgb_jpeg(saved_model):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color=(10, 200, 30)).save(buffer, format="JPEG")
    outputs = saved_model.signatures[SERVING_IMAGE_SIGNATURE](
        **{IMAGES_INPUT: tf.constant([buffer.getvalue()])}
    )
    assert outputs[PROBABILITIES_OUTPUT].shape == (1, len(CLASS_NAMES))


def test_undecodable_bytes_are_an_invalid_argument(saved_model):
    with pytest.raises(tf.errors.InvalidArgumentError):
        saved_model.signatures[SERVING_IMAGE_SIGNATURE](
            **{IMAGES_INPUT: tf.constant([b"not an image"])}
        )
