"""The exported SavedModel's signatures, with the Transform graph inside.

Clients and TFMA send raw data: serialized tf.Examples to `serving_default`, encoded image bytes
to `serving_image`. Both run the same Transform graph and network, so they always agree.
"""

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from trainer.features import (
    CLASS_ID_OUTPUT,
    EXAMPLES_INPUT,
    IMAGE_KEY,
    IMAGES_INPUT,
    LABEL_KEY,
    PROBABILITIES_OUTPUT,
    SERVING_DEFAULT_SIGNATURE,
    SERVING_IMAGE_SIGNATURE,
    transformed_name,
)


def _as_raw_image_feature(images: tf.Tensor, spec) -> tf.Tensor | tf.SparseTensor:
    """A [N] batch of encoded images, shaped like the raw `image` feature parsed from Examples."""
    if isinstance(spec, tf.io.VarLenFeature):
        return tf.sparse.from_dense(tf.expand_dims(images, -1))
    return tf.reshape(images, [-1, *spec.shape])


def make_serving_signatures(
    model: keras.Model, tf_transform_output: tft.TFTransformOutput
) -> dict[str, tf.types.experimental.ConcreteFunction]:
    """Both serving signatures; they output `probabilities` [N, classes] and `class_id` [N]."""
    model.tft_layer = tf_transform_output.transform_features_layer()  # tracked, so it is saved
    raw_feature_spec = tf_transform_output.raw_feature_spec()
    raw_feature_spec.pop(LABEL_KEY)

    def classify(raw_features: dict) -> dict[str, tf.Tensor]:
        transformed = model.tft_layer(raw_features)
        probabilities = model(transformed[transformed_name(IMAGE_KEY)])
        return {
            PROBABILITIES_OUTPUT: probabilities,
            CLASS_ID_OUTPUT: tf.argmax(probabilities, axis=-1),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    def serve_examples(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return classify(tf.io.parse_example(examples, raw_feature_spec))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=IMAGES_INPUT)])
    def serve_images(images: tf.Tensor) -> dict[str, tf.Tensor]:
        return classify({IMAGE_KEY: _as_raw_image_feature(images, raw_feature_spec[IMAGE_KEY])})

    return {
        SERVING_DEFAULT_SIGNATURE: serve_examples.get_concrete_function(),
        SERVING_IMAGE_SIGNATURE: serve_images.get_concrete_function(),
    }


def export_model(
    model: keras.Model, tf_transform_output: tft.TFTransformOutput, export_dir: str
) -> None:
    """Writes the SavedModel that Evaluator, Pusher and TF Serving load."""
    signatures = make_serving_signatures(model, tf_transform_output)
    model.save(export_dir, save_format="tf", signatures=signatures)
