import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis.prediction_log_pb2 import PredictionLog

from components.data import colour_shapes
from components.data.codecs import encode_png
from components.data.photos import KINDS, render
from components.data.sample import load_sample, make_example
from tests.fixtures import PHOTO_PROFILE
from trainer.calibration import scaled
from trainer.export import export_model, read_class_names, read_image_profile
from trainer.features import (
    CLASS_ID_OUTPUT,
    CLASS_NAME_OUTPUT,
    CONFIDENCE_OUTPUT,
    CONFIDENCE_THRESHOLD,
    EXAMPLES_INPUT,
    IMAGES_INPUT,
    PROBABILITIES_OUTPUT,
    SERVING_DEFAULT_SIGNATURE,
    SERVING_IMAGE_SIGNATURE,
    WARMUP_BATCH_SIZES,
    WARMUP_FILE,
    ImageProfile,
)
from trainer.model import build_model
from trainer.normalisation_test import in_a_line

CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def network():
    return build_model(len(CLASS_NAMES), 1e-3)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, transform_output, network):
    path = tmp_path_factory.mktemp("model")
    export_model(network, transform_output, str(path), CLASS_NAMES)
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
        assert outputs[CONFIDENCE_OUTPUT].dtype == tf.float32


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
    for key in (CLASS_ID_OUTPUT, CLASS_NAME_OUTPUT, CONFIDENCE_OUTPUT):
        np.testing.assert_array_equal(from_examples[key], from_images[key])
    names = [CLASS_NAMES[i].encode() for i in from_images[CLASS_ID_OUTPUT].numpy()]
    assert from_images[CLASS_NAME_OUTPUT].numpy().tolist() == names


def test_both_signatures_apply_the_calibrations_temperature(
    tmp_path, transform_output, network, saved_model, png_digits
):
    export_model(network, transform_output, str(tmp_path), CLASS_NAMES, temperature=0.5)
    calibrated = tf.saved_model.load(str(tmp_path))
    examples = [make_example(png, 0, "").SerializeToString() for png in png_digits[:6]]
    for name, inputs in (
        (SERVING_IMAGE_SIGNATURE, {IMAGES_INPUT: tf.constant(png_digits[:6])}),
        (SERVING_DEFAULT_SIGNATURE, {EXAMPLES_INPUT: tf.constant(examples)}),
    ):
        raw, sharper = saved_model.signatures[name](**inputs), calibrated.signatures[name](**inputs)
        expected = scaled(raw[PROBABILITIES_OUTPUT].numpy(), 0.5)
        np.testing.assert_allclose(sharper[PROBABILITIES_OUTPUT], expected, rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(sharper[CLASS_ID_OUTPUT], raw[CLASS_ID_OUTPUT])
        np.testing.assert_allclose(sharper[CONFIDENCE_OUTPUT], expected.max(axis=1), rtol=1e-4)
        assert (sharper[CONFIDENCE_OUTPUT].numpy() > raw[CONFIDENCE_OUTPUT].numpy()).all()


def test_a_digit_the_network_itself_is_unsure_of_is_held_under_the_threshold(
    tmp_path, transform_output, network, saved_model, png_digits
):
    """Where the network's own top probability is under the calibration's `unfamiliar_below`,
    the confidence is held under the threshold on both signatures, however the temperature
    sharpens it; above the level, it stays the top probability."""
    own = saved_model.signatures[SERVING_IMAGE_SIGNATURE](
        **{IMAGES_INPUT: tf.constant(png_digits[:6])}
    )
    top = own[PROBABILITIES_OUTPUT].numpy().max(axis=1)  # temperature 1: the network's own
    level = float(np.median(top))
    export_model(
        network, transform_output, str(tmp_path), CLASS_NAMES, 1e-4, unfamiliar_below=level
    )
    signatures = tf.saved_model.load(str(tmp_path)).signatures
    examples = [make_example(png, 0, "").SerializeToString() for png in png_digits[:6]]
    for name, inputs in (
        (SERVING_IMAGE_SIGNATURE, {IMAGES_INPUT: tf.constant(png_digits[:6])}),
        (SERVING_DEFAULT_SIGNATURE, {EXAMPLES_INPUT: tf.constant(examples)}),
    ):
        outputs = signatures[name](**inputs)
        sharpened = outputs[PROBABILITIES_OUTPUT].numpy().max(axis=1)
        confidence = outputs[CONFIDENCE_OUTPUT].numpy()
        held = top < level
        assert held.any() and (~held).any()
        assert (sharpened[held] > CONFIDENCE_THRESHOLD).all()  # the temperature alone: sure
        assert (confidence[held] <= CONFIDENCE_THRESHOLD / 2).all()
        np.testing.assert_allclose(confidence[~held], sharpened[~held], rtol=1e-6)


def test_image_signature_accepts_rgb_jpeg(saved_model):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color=(10, 200, 30)).save(buffer, format="JPEG")
    outputs = saved_model.signatures[SERVING_IMAGE_SIGNATURE](
        **{IMAGES_INPUT: tf.constant([buffer.getvalue()])}
    )
    assert outputs[PROBABILITIES_OUTPUT].shape == (1, len(CLASS_NAMES))


def test_pictures_without_a_digit_have_zero_confidence(saved_model, png_digits):
    def png(pixels) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, format="PNG")
        return buffer.getvalue()

    blank = [png(np.zeros((1, 1))), png(np.full((30, 50), 255)), png(np.full((1, 900), 90))]
    outputs = saved_model.signatures[SERVING_IMAGE_SIGNATURE](
        **{IMAGES_INPUT: tf.constant([*blank, png_digits[0]])}
    )
    confidence = outputs[CONFIDENCE_OUTPUT].numpy()
    assert confidence[:3].tolist() == [0.0, 0.0, 0.0]
    assert confidence[3] == pytest.approx(outputs[PROBABILITIES_OUTPUT].numpy()[3].max())
    assert not np.isnan(outputs[PROBABILITIES_OUTPUT].numpy()).any()


def test_a_picture_of_several_digits_is_answered_unsure(
    tmp_path, transform_output, network, digits
):
    """Whatever the network says (sharpened here by a low temperature until it is sure of
    everything), two digits in one picture get a confidence under the threshold, on both
    signatures; a digit alone keeps its top probability."""
    export_model(network, transform_output, str(tmp_path), CLASS_NAMES, temperature=1e-4)
    signatures = tf.saved_model.load(str(tmp_path)).signatures
    pair = in_a_line(digits[0][0], digits[0][1])
    pictures = [encode_png(pair), encode_png(digits[0][0])]
    examples = [make_example(p, 0, CLASS_NAMES[0]).SerializeToString() for p in pictures]
    requests = {SERVING_IMAGE_SIGNATURE: (IMAGES_INPUT, pictures)}
    requests[SERVING_DEFAULT_SIGNATURE] = (EXAMPLES_INPUT, examples)
    for name, (key, batch) in requests.items():
        outputs = signatures[name](**{key: tf.constant(batch)})
        confidence = outputs[CONFIDENCE_OUTPUT].numpy()
        probabilities = outputs[PROBABILITIES_OUTPUT].numpy()
        assert probabilities[0].max() > 0.9  # the network alone would be sure of one digit
        assert confidence[0] <= CONFIDENCE_THRESHOLD / 2
        assert confidence[1] == pytest.approx(probabilities[1].max())


def test_digits_as_people_send_them_through_both_signatures(trained_model_dir, digits):
    """The trained fixture model (one network, 3 epochs, no augmentation: about 95 % on MNIST's
    own form) on each kind of picture, made from sample digits it never saw. Without the
    normalisation it is near chance on all but the drawing pad; `make bench` measures the real
    model."""
    (version,) = trained_model_dir.iterdir()
    model = tf.saved_model.load(str(version))
    pixels, labels = load_sample(2040, seed=2)  # the fixture trained on the first 2,000
    pixels, labels = pixels[2000:], labels[2000:]
    accuracies = {}
    for name, variant in KINDS.items():
        pictures = render(pixels, variant, seed=3)
        by_image = model.signatures[SERVING_IMAGE_SIGNATURE](
            **{IMAGES_INPUT: tf.constant(pictures)}
        )
        examples = [make_example(p, 0, "").SerializeToString() for p in pictures]
        by_example = model.signatures[SERVING_DEFAULT_SIGNATURE](
            **{EXAMPLES_INPUT: tf.constant(examples)}
        )
        np.testing.assert_array_equal(by_image[CLASS_ID_OUTPUT], by_example[CLASS_ID_OUTPUT])
        accuracy = np.mean(by_image[CLASS_ID_OUTPUT].numpy() == labels)
        accuracies[name] = accuracy
    assert min(accuracies.values()) >= 0.6 and np.mean(list(accuracies.values())) >= 0.8, accuracies


def test_undecodable_bytes_are_an_invalid_argument(saved_model):
    with pytest.raises(tf.errors.InvalidArgumentError):
        saved_model.signatures[SERVING_IMAGE_SIGNATURE](
            **{IMAGES_INPUT: tf.constant([b"not an image"])}
        )


def test_warmup_requests_travel_in_the_saved_model_and_run_on_both_signatures(
    export_dir, saved_model
):
    records = [
        PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(str(export_dir / WARMUP_FILE))
    ]
    requests = [record.predict_log.request for record in records]
    assert sorted((r.model_spec.signature_name, len(r.inputs)) for r in requests) == sorted(
        (name, 1)
        for name in (SERVING_DEFAULT_SIGNATURE, SERVING_IMAGE_SIGNATURE)
        for _ in WARMUP_BATCH_SIZES
    )
    for request in requests:
        signature = saved_model.signatures[request.model_spec.signature_name]
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        outputs = signature(**inputs)
        assert len(outputs[CLASS_ID_OUTPUT]) in WARMUP_BATCH_SIZES


def test_a_photo_model_carries_its_profile_and_answers_colour_pictures_on_both_signatures(
    tmp_path, photo_transform_output, photos
):
    names = list(colour_shapes.CLASS_NAMES)
    network = build_model(len(names), 1e-3, members=1, profile=PHOTO_PROFILE)
    export_model(network, photo_transform_output, str(tmp_path), names, profile=PHOTO_PROFILE)
    assert read_image_profile(tmp_path) == PHOTO_PROFILE
    model = tf.saved_model.load(str(tmp_path))
    pictures, labels = photos[0][:6], photos[1][:6]
    examples = [
        make_example(picture, int(label), names[label]).SerializeToString()
        for picture, label in zip(pictures, labels, strict=True)
    ]
    from_images = model.signatures[SERVING_IMAGE_SIGNATURE](**{IMAGES_INPUT: tf.constant(pictures)})
    from_examples = model.signatures[SERVING_DEFAULT_SIGNATURE](
        **{EXAMPLES_INPUT: tf.constant(examples)}
    )
    assert from_images[PROBABILITIES_OUTPUT].shape == (6, len(names))
    np.testing.assert_allclose(
        from_images[PROBABILITIES_OUTPUT], from_examples[PROBABILITIES_OUTPUT], rtol=1e-5
    )
    # No ink test for photos: the confidence is the top probability, even on a dark picture.
    probabilities = from_images[PROBABILITIES_OUTPUT].numpy()
    np.testing.assert_allclose(from_images[CONFIDENCE_OUTPUT], probabilities.max(axis=1))


def test_a_model_without_a_profile_asset_reads_as_digits(export_dir, tmp_path):
    assert read_image_profile(export_dir) == ImageProfile()
    assert read_image_profile(tmp_path) == ImageProfile()  # from before profiles existed
