"""tf.Transform preprocessing: raw encoded images to the network's input, as the image
profile (trainer/features.py) says: digits in MNIST's form, or photos in colour.

The same graph runs in the Transform component, in training and inside both serving signatures,
so a client never has to know how images are scaled.
"""

import tensorflow as tf
import tensorflow_transform as tft

from trainer.features import (
    CLASS_NAME_KEY,
    DIGITS,
    IMAGE_CHANNELS,
    IMAGE_KEY,
    IMAGE_PROFILE_CONFIG,
    LABEL_KEY,
    SEVERAL_DIGITS_XF,
    ImageProfile,
    transformed_name,
)
from trainer.normalisation import fit, to_mnist_form


def decode_grayscale(data: tf.Tensor) -> tf.Tensor:
    """One encoded picture as uint8 [height, width, 1]. TensorFlow decodes a GIF or a BMP only
    to colour ("channels must be 0 or 3 for GIF", "0, 3 or 4" for BMP, even a grey one), so
    those are decoded to RGB and turned grey."""
    colour_only = tf.logical_or(
        tf.strings.substr(data, 0, 3) == "GIF", tf.strings.substr(data, 0, 2) == "BM"
    )
    return tf.cond(
        colour_only,
        lambda: tf.image.rgb_to_grayscale(
            tf.io.decode_image(data, channels=3, expand_animations=False)
        ),
        lambda: tf.io.decode_image(data, channels=IMAGE_CHANNELS, expand_animations=False),
    )


def decode_images(encoded: tf.Tensor) -> tf.Tensor:
    """Encoded images (PNG, JPEG, BMP or GIF; any size; grayscale or RGB), shape [N], to
    float32 [N, 28, 28, 1] in [0, 1] in MNIST's form (trainer/normalisation.py): white ink on
    black, the digit 20 pixels on its longer side, centred by its centre of mass."""
    return decode_digits(encoded)[0]


# Traced once per process, and inside the graphs that call it a single function call:
# tf.Transform traces the preprocessing_fn nine times (analysis, schema, saving), and each trace
# of the normalisation's 2,700 ops cost about 0.8 s on 2 cores. Run as written: it is TensorFlow
# ops with no Python control flow on tensors, and AutoGraph's rewrite cost another 4 s.
@tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
def decode_digits(encoded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`decode_images`, and float32 [N]: 1 where a picture holds several digits."""

    def decode_one(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return fit(tf.image.convert_image_dtype(decode_grayscale(data), tf.float32))  # [0, 1]

    def canvas_of_one() -> tuple[tf.Tensor, tf.Tensor]:
        picture, measures = decode_one(encoded[0])
        return picture[None], measures[None]

    def canvas_of_many() -> tuple[tf.Tensor, tf.Tensor]:
        def ragged_one(data: tf.Tensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
            picture, measures = decode_one(data)
            return tf.RaggedTensor.from_tensor(picture), measures

        pictures, measures = tf.map_fn(
            ragged_one,
            encoded,
            fn_output_signature=(
                tf.RaggedTensorSpec([None, None, IMAGE_CHANNELS], tf.float32, ragged_rank=1),
                tf.TensorSpec([3], tf.float32),
            ),
        )
        # As large as the batch's largest picture, padded with paper (zeros).
        return pictures.to_tensor(), measures

    # One canvas for the batch. A single picture (most requests) is its own canvas, without the
    # loop over pictures (about a tenth of its normalisation's time).
    canvas, measures = tf.cond(tf.size(encoded) == 1, canvas_of_one, canvas_of_many)
    images, several = to_mnist_form(canvas, measures)
    return images, tf.cast(several, tf.float32)


def decode_photos(encoded: tf.Tensor, profile: ImageProfile) -> tf.Tensor:
    """Encoded images, shape [N], to float32 [N, height, width, channels] in [0, 1]: colour kept
    (or turned grey for a one-channel profile), each shrunk or enlarged with its aspect kept
    and padded with black to the profile's size; no crop, so no object loses its edges."""

    def decode_one(data: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)  # any format
        if profile.channels == 1:
            image = tf.image.rgb_to_grayscale(image)
        image = tf.image.convert_image_dtype(image, tf.float32)
        return tf.image.resize_with_pad(image, profile.height, profile.width, antialias=True)

    return tf.map_fn(
        decode_one, encoded, fn_output_signature=tf.TensorSpec(profile.shape, tf.float32)
    )


def per_channel_scaling(images: tf.Tensor) -> tf.Tensor:
    """Photos [N, H, W, C] with each channel shifted and scaled by the training split's mean and
    standard deviation of that channel (tf.Transform's analyzers: constants in the graph)."""
    # Named: an analyzer's cache key is its name, stable however often the graph is traced.
    means = tf.reduce_mean(images, axis=[1, 2])
    mean = tft.mean(means, reduce_instance_dims=False, name="channel_mean")
    squares = tf.reduce_mean(tf.square(images), axis=[1, 2])
    mean_square = tft.mean(squares, reduce_instance_dims=False, name="channel_mean_square")
    deviation = tf.sqrt(tf.maximum(mean_square - tf.square(mean), 1e-6))
    return (images - mean) / deviation


def _as_vector(feature: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """A one-value-per-example feature, dense [N, 1] or sparse, as a dense [N] vector."""
    if isinstance(feature, tf.SparseTensor):
        feature = tf.sparse.to_dense(feature)
    return tf.reshape(feature, [-1])


def preprocessing_fn(inputs: dict, custom_config: dict | None = None) -> dict:
    """tf.Transform entry point: decode and scale the image as the image profile in
    `custom_config` says (digits without one), and for digits whether each picture holds several
    (SEVERAL_DIGITS_XF); label and class name pass through (the Trainer reads the class names
    from them; without a class_name feature, a class is named by its id)."""
    profile = ImageProfile.from_json((custom_config or {}).get(IMAGE_PROFILE_CONFIG))
    encoded = _as_vector(inputs[IMAGE_KEY])
    outputs = {}
    if profile.name == DIGITS:
        images, outputs[SEVERAL_DIGITS_XF] = decode_digits(encoded)
    else:
        images = per_channel_scaling(decode_photos(encoded, profile))
    labels = _as_vector(inputs[LABEL_KEY])
    if CLASS_NAME_KEY in inputs:
        class_names = _as_vector(inputs[CLASS_NAME_KEY])
    else:  # examples of (image, label) only: classes are named by their ids
        class_names = tf.strings.as_string(labels)
    return {
        transformed_name(IMAGE_KEY): images,
        transformed_name(LABEL_KEY): labels,
        transformed_name(CLASS_NAME_KEY): class_names,
        **outputs,
    }
