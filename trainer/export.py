"""The exported SavedModel's signatures, with the Transform graph and the class names inside.

Clients and TFMA send raw data: serialized tf.Examples to `serving_default`, encoded image bytes
to `serving_image`. Both run the same Transform graph and network, so they always agree, and
both name the class with the vocabulary that travels as the asset `class_names.txt`.
"""

import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tensorflow_serving.apis import prediction_log_pb2

from trainer.calibration import scaled
from trainer.features import (
    CLASS_ID_OUTPUT,
    CLASS_NAME_KEY,
    CLASS_NAME_OUTPUT,
    CLASS_NAMES_ASSET,
    CONFIDENCE_OUTPUT,
    CONFIDENCE_THRESHOLD,
    DIGITS,
    DIGITS_PROFILE,
    EXAMPLES_INPUT,
    IMAGE_KEY,
    IMAGE_PROFILE_ASSET,
    IMAGES_INPUT,
    LABEL_KEY,
    PROBABILITIES_OUTPUT,
    SERVING_DEFAULT_SIGNATURE,
    SERVING_IMAGE_SIGNATURE,
    SEVERAL_DIGITS_XF,
    WARMUP_BATCH_SIZES,
    WARMUP_FILE,
    ImageProfile,
    transformed_name,
)


def as_raw_image_feature(images: tf.Tensor, spec) -> tf.Tensor | tf.SparseTensor:
    """A [N] batch of encoded images, shaped like the raw `image` feature parsed from Examples."""
    if isinstance(spec, tf.io.VarLenFeature):
        return tf.sparse.from_dense(tf.expand_dims(images, -1))
    return tf.reshape(images, [-1, *spec.shape])


def _class_name_table(
    model: keras.Model, class_names: list[str], folder: Path
) -> tf.lookup.StaticHashTable:
    """class id -> name, read from an asset file in `folder` that the SavedModel carries."""
    (folder / CLASS_NAMES_ASSET).write_text("".join(f"{name}\n" for name in class_names))
    model.class_names_asset = tf.saved_model.Asset(str(folder / CLASS_NAMES_ASSET))
    return tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(
            model.class_names_asset,
            key_dtype=tf.int64,
            key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
            value_dtype=tf.string,
            value_index=tf.lookup.TextFileIndex.WHOLE_LINE,
        ),
        default_value="",
    )


def make_serving_signatures(
    model: keras.Model,
    tf_transform_output: tft.TFTransformOutput,
    class_names: list[str],
    assets_dir: Path,
    temperature: float = 1.0,
    unfamiliar_below: float = 0.0,
    profile: ImageProfile = DIGITS_PROFILE,
) -> dict[str, tf.types.experimental.ConcreteFunction]:
    """Both serving signatures; they output `probabilities` [N, classes] (the network's,
    scaled by the calibration's `temperature`), `class_id` [N], `class_name` [N] and
    `confidence` [N]: the top probability, held under the threshold for digits where the
    network's own top probability is under `unfamiliar_below` (trainer/calibration.py: only
    the digits' Trainer learns pictures of no class) or the picture holds several. The assets
    (class names, image profile) are written to `assets_dir`, which must stay until the model
    is saved (saving copies them into the SavedModel)."""
    model.tft_layer = tf_transform_output.transform_features_layer()  # tracked, so it is saved
    model.class_names = _class_name_table(model, class_names, assets_dir)
    (assets_dir / IMAGE_PROFILE_ASSET).write_text(profile.to_json())
    model.image_profile_asset = tf.saved_model.Asset(str(assets_dir / IMAGE_PROFILE_ASSET))
    raw_feature_spec = tf_transform_output.raw_feature_spec()
    for key in (LABEL_KEY, CLASS_NAME_KEY):  # what a client knows is the image
        raw_feature_spec.pop(key, None)

    def classify(raw_features: dict) -> dict[str, tf.Tensor]:
        transformed = model.tft_layer(raw_features)
        images = transformed[transformed_name(IMAGE_KEY)]
        network = model(images)
        probabilities = scaled(network, temperature)
        class_ids = tf.argmax(probabilities, axis=-1)
        confidence = tf.reduce_max(probabilities, axis=-1)
        if profile.name == DIGITS:  # the normalisation leaves all zeros where it found no ink
            unsure = tf.minimum(confidence, CONFIDENCE_THRESHOLD / 2)
            unlike_one_digit = (transformed[SEVERAL_DIGITS_XF] > 0) | (
                tf.reduce_max(network, axis=-1) < unfamiliar_below
            )
            confidence = tf.where(unlike_one_digit, unsure, confidence)
            confidence = tf.where(tf.reduce_max(images, axis=[1, 2, 3]) > 0, confidence, 0.0)
        return {
            PROBABILITIES_OUTPUT: probabilities,
            CLASS_ID_OUTPUT: class_ids,
            CLASS_NAME_OUTPUT: model.class_names.lookup(class_ids),
            CONFIDENCE_OUTPUT: confidence,
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    def serve_examples(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return classify(tf.io.parse_example(examples, raw_feature_spec))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=IMAGES_INPUT)])
    def serve_images(images: tf.Tensor) -> dict[str, tf.Tensor]:
        return classify({IMAGE_KEY: as_raw_image_feature(images, raw_feature_spec[IMAGE_KEY])})

    return {
        SERVING_DEFAULT_SIGNATURE: serve_examples.get_concrete_function(),
        SERVING_IMAGE_SIGNATURE: serve_images.get_concrete_function(),
    }


def export_model(
    model: keras.Model,
    tf_transform_output: tft.TFTransformOutput,
    export_dir: str,
    class_names: list[str],
    temperature: float = 1.0,
    unfamiliar_below: float = 0.0,
    profile: ImageProfile = DIGITS_PROFILE,
) -> None:
    """Writes the SavedModel that Evaluator, Pusher and TF Serving load."""
    with tempfile.TemporaryDirectory() as assets_dir:
        signatures = make_serving_signatures(
            model,
            tf_transform_output,
            class_names,
            Path(assets_dir),
            temperature,
            unfamiliar_below,
            profile,
        )
        model.save(export_dir, save_format="tf", signatures=signatures)
    write_warmup_requests(export_dir)


def warmup_requests() -> list[prediction_log_pb2.PredictionLog]:
    """A request of each warm-up batch size for each signature, of one drawn stroke (a one):
    what TFX's InfraValidator writes with `make_warmup`, for the project's two signatures."""
    stroke = np.zeros([28, 28, 1], np.uint8)
    stroke[4:24, 13:15] = 255
    png = tf.io.encode_png(stroke).numpy()
    example = tf.train.Example()
    example.features.feature[IMAGE_KEY].bytes_list.value.append(png)
    inputs = {
        SERVING_IMAGE_SIGNATURE: (IMAGES_INPUT, png),
        SERVING_DEFAULT_SIGNATURE: (EXAMPLES_INPUT, example.SerializeToString()),
    }
    records = []
    for signature_name, (input_name, value) in inputs.items():
        for size in WARMUP_BATCH_SIZES:
            record = prediction_log_pb2.PredictionLog()
            request = record.predict_log.request
            request.model_spec.signature_name = signature_name
            request.inputs[input_name].CopyFrom(tf.make_tensor_proto([value] * size))
            records.append(record)
    return records


def write_warmup_requests(export_dir: str) -> None:
    """Writes the warm-up records into the SavedModel, where TF Serving reads them."""
    path = f"{export_dir}/{WARMUP_FILE}"
    tf.io.gfile.makedirs(path.rsplit("/", 1)[0])
    with tf.io.TFRecordWriter(path) as writer:
        for record in warmup_requests():
            writer.write(record.SerializeToString())


def read_class_names(saved_model_dir: Path | str) -> list[str] | None:
    """The class names an exported model carries, in class id order; None for a model exported
    before class names travelled with it. Reads local and cloud (gs://) paths."""
    path = f"{saved_model_dir}/assets/{CLASS_NAMES_ASSET}"
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as names:
        return names.read().splitlines()


def read_image_profile(saved_model_dir: Path | str) -> ImageProfile:
    """The image profile an exported model carries (digits for a model exported before profiles
    existed). Reads local and cloud (gs://) paths."""
    path = f"{saved_model_dir}/assets/{IMAGE_PROFILE_ASSET}"
    if not tf.io.gfile.exists(path):
        return DIGITS_PROFILE
    with tf.io.gfile.GFile(path) as text:
        return ImageProfile.from_json(text.read())
