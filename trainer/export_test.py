import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.mnist_sample import make_example
from trainer.export import export_model
from trainer.features import (
    CLASS_ID_OUTPUT,
    EXAMPLES_INPUT,
    IMAGES_INPUT,
    NUM_CLASSES,
    PROBABILITIES_OUTPUT,
    SERVING_DEFAULT_SIGNATURE,
    SERVING_IMAGE_SIGNATURE,
)
from trainer.model import build_model


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, transform_output):
    export_dir = str(tmp_path_factory.mktemp("model"))
    export_model(build_model(learning_rate=1e-3), transform_output, export_dir)
    return tf.saved_model.load(export_dir)


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


def test_both_signatures_agree_on_raw_examples_and_image_bytes(saved_model, png_digits, digits):
    examples = [
        make_example(png, int(label)).SerializeToString()
        for png, label in zip(png_digits[:6], digits[1][:6], strict=True)
    ]
    from_examples = saved_model.signatures[SERVING_DEFAULT_SIGNATURE](
        **{EXAMPLES_INPUT: tf.constant(examples)}
    )
    from_images = saved_model.signatures[SERVING_IMAGE_SIGNATURE](
        **{IMAGES_INPUT: tf.constant(png_digits[:6])}
    )
    assert from_examples[PROBABILITIES_OUTPUT].shape == (6, NUM_CLASSES)
    assert from_examples[CLASS_ID_OUTPUT].shape == (6,)
    for key in (PROBABILITIES_OUTPUT, CLASS_ID_OUTPUT):
        np.testing.assert_allclose(from_examples[key], from_images[key], rtol=1e-6)


def test_image_signature_accepts_rgb_jpeg(saved_model):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color=(10, 200, 30)).save(buffer, format="JPEG")
    outputs = saved_model.signatures[SERVING_IMAGE_SIGNATURE](
        **{IMAGES_INPUT: tf.constant([buffer.getvalue()])}
    )
    assert outputs[PROBABILITIES_OUTPUT].shape == (1, NUM_CLASSES)


def test_undecodable_bytes_are_an_invalid_argument(saved_model):
    with pytest.raises(tf.errors.InvalidArgumentError):
        saved_model.signatures[SERVING_IMAGE_SIGNATURE](
            **{IMAGES_INPUT: tf.constant([b"not an image"])}
        )
