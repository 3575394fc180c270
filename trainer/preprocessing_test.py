import io

import numpy as np
import tensorflow as tf
from PIL import Image

from tests.fixtures import PHOTO_PROFILE
from trainer.features import (
    CLASS_NAME_KEY,
    IMAGE_KEY,
    IMAGE_SHAPE,
    LABEL_KEY,
    PHOTOS,
    ImageProfile,
    transformed_name,
)
from trainer.preprocessing import decode_images, decode_photos, preprocessing_fn


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


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_photos_keep_colour_and_aspect_padded_with_black_to_the_profile_size():
    wide_red = np.zeros((20, 40, 3), np.uint8)
    wide_red[..., 0] = 255
    colour = decode_photos(tf.constant([png(wide_red)]), ImageProfile(PHOTOS, 32, 32, 3)).numpy()
    assert colour.shape == (1, 32, 32, 3)
    # 40x20 fills the width and half the height, centred: rows 8-23 red, the others padding.
    np.testing.assert_allclose(colour[0, 9:23, :, 0], 1.0, atol=1e-3)
    np.testing.assert_allclose(colour[0, 9:23, :, 1:], 0.0, atol=1e-3)
    assert colour[0, :7].max() == 0 and colour[0, 25:].max() == 0
    grey = decode_photos(tf.constant([png(wide_red)]), ImageProfile(PHOTOS, 16, 16, 1)).numpy()
    assert grey.shape == (1, 16, 16, 1)
    np.testing.assert_allclose(grey[0, 6:10, :, 0], 0.299, atol=0.01)  # red's luma


def test_the_photo_transform_graph_scales_each_channel_by_the_training_split(
    photo_transform_output, photos
):
    xf = transformed_name(IMAGE_KEY)
    assert photo_transform_output.transformed_feature_spec()[xf].shape == list(PHOTO_PROFILE.shape)
    layer = photo_transform_output.transform_features_layer()
    images = layer({IMAGE_KEY: tf.constant([[photo] for photo in photos[0]])})[xf].numpy()
    assert images.shape == (len(photos[0]), *PHOTO_PROFILE.shape)
    np.testing.assert_allclose(images.mean(axis=(0, 1, 2)), 0.0, atol=1e-3)
    np.testing.assert_allclose(images.std(axis=(0, 1, 2)), 1.0, atol=1e-2)
