import io

import numpy as np
import tensorflow as tf
from PIL import Image

from trainer.features import CLASS_NAME_KEY, IMAGE_KEY, IMAGE_SHAPE, LABEL_KEY, transformed_name
from trainer.preprocessing import decode_images, preprocessing_fn


def test_png_digits_decode_to_scaled_float_images(digits, png_digits):
    images = decode_images(tf.constant(png_digits[:8])).numpy()
    assert images.shape == (8, *IMAGE_SHAPE)
    assert images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    # MNIST digits are already in the form the normalisation brings pictures to.
    assert np.abs(images[..., 0] - digits[0][:8] / 255.0).mean() < 0.002


def test_rgb_jpeg_of_another_size_becomes_model_input(digits):
    buffer = io.BytesIO()
    dark_on_white = Image.fromarray(255 - digits[0][0]).resize((40, 56)).convert("RGB")
    dark_on_white.save(buffer, format="JPEG", quality=95)
    images = decode_images(tf.constant([buffer.getvalue()])).numpy()
    assert images.shape == (1, *IMAGE_SHAPE)
    assert np.corrcoef(images.ravel(), digits[0][0].ravel())[0, 1] > 0.7


def test_a_gif_decodes_as_the_png_of_the_same_picture(digits, png_digits):
    gif, animated = io.BytesIO(), io.BytesIO()
    Image.fromarray(digits[0][0]).save(gif, format="GIF")
    frames = [Image.fromarray(digits[0][0]), Image.fromarray(digits[0][1])]
    frames[0].save(animated, format="GIF", save_all=True, append_images=frames[1:])
    images = decode_images(tf.constant([gif.getvalue(), animated.getvalue(), png_digits[0]]))
    np.testing.assert_allclose(images[0], images[2], atol=1 / 255)
    np.testing.assert_allclose(images[1], images[2], atol=1 / 255)  # the first frame


def test_a_bmp_grey_or_colour_decodes_as_the_png_of_the_same_picture(digits, png_digits):
    """TensorFlow decodes a BMP only to colour, even a grey one ("channels must be 0, 3 or 4")."""
    bmps = []
    for mode in ("L", "RGB"):
        bmp = io.BytesIO()
        Image.fromarray(digits[0][0]).convert(mode).save(bmp, format="BMP")
        bmps.append(bmp.getvalue())
    images = decode_images(tf.constant([*bmps, png_digits[0]]))
    np.testing.assert_allclose(images[0], images[2], atol=1 / 255)
    np.testing.assert_allclose(images[1], images[2], atol=1 / 255)


def test_preprocessing_fn_accepts_dense_and_sparse_features(png_digits):
    labels = tf.constant([[3], [7]], tf.int64)
    names = tf.constant([[b"three"], [b"seven"]])
    dense = {
        IMAGE_KEY: tf.constant([[png_digits[0]], [png_digits[1]]]),
        LABEL_KEY: labels,
        CLASS_NAME_KEY: names,
    }
    sparse = {key: tf.sparse.from_dense(value) for key, value in dense.items()}
    for inputs in (dense, sparse):
        outputs = preprocessing_fn(inputs)
        assert outputs[transformed_name(IMAGE_KEY)].shape == (2, *IMAGE_SHAPE)
        assert outputs[transformed_name(IMAGE_KEY)].dtype == tf.float32
        assert outputs[transformed_name(LABEL_KEY)].numpy().tolist() == [3, 7]
        assert outputs[transformed_name(CLASS_NAME_KEY)].numpy().tolist() == [b"three", b"seven"]


def test_examples_without_class_names_name_classes_by_id(png_digits):
    inputs = {IMAGE_KEY: tf.constant([[png_digits[0]]]), LABEL_KEY: tf.constant([[4]], tf.int64)}
    assert preprocessing_fn(inputs)[transformed_name(CLASS_NAME_KEY)].numpy().tolist() == [b"4"]
