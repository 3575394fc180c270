"""Trainer component entry point (`run_fn`): input pipeline, devices, training and export."""

import json
import math
import os
import tempfile
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from absl import logging
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from trainer.backbones import weights_path
from trainer.calibration import fit_temperature, reliability, scaled, unfamiliar_below
from trainer.conditions import as_they_arrive, not_one_class
from trainer.config import CALIBRATION_FILE, HISTORY_FILE, TrainingConfig
from trainer.export import as_raw_image_feature, export_model, read_class_names
from trainer.features import (
    CLASS_NAME_KEY,
    DIGITS,
    DIGITS_PROFILE,
    IMAGE_KEY,
    IMAGE_PROFILE_CONFIG,
    LABEL_KEY,
    MNIST_CLASS_NAMES,
    ImageProfile,
    transformed_name,
)
from trainer.model import NOT_ONE_CLASS, build_augmentation, build_model
from trainer.printed import printed_text

IMAGE_XF = transformed_name(IMAGE_KEY)
LABEL_XF = transformed_name(LABEL_KEY)
CLASS_NAME_XF = transformed_name(CLASS_NAME_KEY)


def cluster_workers(tf_config: str | None) -> tuple[int, bool]:
    """(number of workers, whether this one is the chief) from a TF_CONFIG value, as set by
    Vertex AI Training for multi-worker jobs."""
    config = json.loads(tf_config or "{}")
    cluster = config.get("cluster", {})
    workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    task = config.get("task", {})
    is_chief = task.get("type", "chief") == "chief" or (
        "chief" not in cluster and task.get("type") == "worker" and task.get("index") == 0
    )
    return max(workers, 1), is_chief


def use_mixed_precision_on_gpus() -> None:
    """Keras' global policy: float16 compute where GPUs are visible (float32 on CPUs, where
    float16 is slower)."""
    if tf.config.list_logical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")


def distribution_strategy() -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy across a TF_CONFIG cluster; otherwise mirrors over every
    visible GPU, or over the CPU devices when split into logical devices. One device trains
    under the default strategy: mirroring over one device cost 64x64 photos 5-10 s per epoch
    on 2 cores (its distributed iterators), and buys nothing."""
    gpus = tf.config.list_logical_devices("GPU")
    if cluster_workers(os.environ.get("TF_CONFIG"))[0] > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    devices = gpus or tf.config.list_logical_devices("CPU")
    if len(devices) == 1:
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy([device.name for device in devices])


# The shuffle buffer holds serialized examples, and each epoch fills it before its first step:
# bounded in bytes, photos' large examples neither fill memory nor delay every epoch (10,000,
# tfx_bsl's default, holds 30 MB of digits but 1.9 GB of 128x128 colour photos).
SHUFFLE_BUFFER_BYTES = 64 * 2**20


def shuffle_buffer_size(example_bytes: int) -> int:
    """Examples the shuffle buffer holds: up to 10,000, within SHUFFLE_BUFFER_BYTES, at least
    1,024."""
    return max(1024, min(10_000, SHUFFLE_BUFFER_BYTES // example_bytes))


def transformed_examples(
    file_pattern: list[str],
    data_accessor: tfx.components.DataAccessor,
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
    shuffle: bool,
    features: tuple[str, ...] | None = None,
) -> tf.data.Dataset:
    """The transformed features (all, or only `features` and the label, so that the others are
    not decoded), as (features, label) batches, one pass."""
    schema = tf_transform_output.transformed_metadata.schema
    image_bytes = 4 * math.prod(tf_transform_output.transformed_feature_spec()[IMAGE_XF].shape)
    if features is not None:
        wanted = {*features, LABEL_XF}
        schema = schema_pb2.Schema(feature=[f for f in schema.feature if f.name in wanted])
    return data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size,
            label_key=LABEL_XF,
            shuffle=shuffle,
            shuffle_buffer_size=shuffle_buffer_size(image_bytes),
            num_epochs=1,
        ),
        schema,
    )


Bank = tuple[np.ndarray, np.ndarray]  # pictures [M, 28, 28, 1] in MNIST's form, labels [M]
BANK_DIGITS = 4096  # training digits drawn as they really arrive, once per run


class Augmentation:
    """What a training batch goes through: `share` of its images replaced by random pictures of
    each bank (real-world renderings, printed text, pictures of no one class), then the
    profile's random changes (trainer/model.py: for digits small shifts, rotations, zoom and
    stroke changes)."""

    def __init__(self, banks: list[tuple[Bank, float]], geometry: keras.Sequential | None = None):
        self.banks = [
            (tf.constant(images), tf.constant(labels), share) for (images, labels), share in banks
        ]
        self.geometry_and_strokes = geometry or build_augmentation()

    def __call__(self, images: tf.Tensor, labels: tf.Tensor) -> tuple[dict, tf.Tensor]:
        shape, labels = tf.shape(labels), tf.reshape(labels, [-1])
        count = tf.shape(images)[0]
        for bank_images, bank_labels, share in self.banks:
            picked = tf.random.uniform([count], 0, tf.shape(bank_labels)[0], tf.int32)
            swap = tf.random.uniform([count]) < share
            images = tf.where(swap[:, None, None, None], tf.gather(bank_images, picked), images)
            picked_labels = tf.cast(tf.gather(bank_labels, picked), labels.dtype)
            labels = tf.where(swap, picked_labels, labels)
        images = self.geometry_and_strokes(images, training=True)
        return {IMAGE_XF: images}, tf.reshape(labels, shape)


def training_augmentation(
    config: TrainingConfig,
    digits: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str] = MNIST_CLASS_NAMES,
) -> Augmentation:
    """The Trainer's augmentation, its banks drawn from training `digits` [N, 28, 28, 1] and
    their `labels`: printed text and pictures of no one class only for the ten digits."""
    printed = printed_text(list(class_names), config.seed)
    if printed is None:
        return Augmentation([((as_they_arrive(digits), labels), config.real_world_share)])
    partners = digits[: len(digits) // 8]
    nothing = not_one_class(partners)  # as many pictures of each kind as partners
    nothing_share = config.pair_share * len(nothing) / len(partners)  # pair_share for each kind
    # Printed text arrives under the same conditions as handwriting.
    everything = np.concatenate([digits, printed[0]]), np.concatenate([labels, printed[1]])
    return Augmentation(
        [
            ((as_they_arrive(everything[0]), everything[1]), config.real_world_share),
            (printed, config.printed_share),
            ((nothing, np.full(len(nothing), NOT_ONE_CLASS)), nothing_share),
        ]
    )


def bank_digits(dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Up to BANK_DIGITS training digits and their labels from (features, label) batches."""
    images, labels = [], []
    for features, label in dataset:
        images.append(features[IMAGE_XF].numpy())
        labels.append(label.numpy().reshape(-1))
        if sum(map(len, labels)) >= BANK_DIGITS:
            break
    return np.concatenate(images)[:BANK_DIGITS], np.concatenate(labels)[:BANK_DIGITS]


def make_dataset(
    file_pattern: list[str],
    data_accessor: tfx.components.DataAccessor,
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
    augmentation: Augmentation | None = None,
) -> tf.data.Dataset:
    """The network's input as (image, label) batches; training batches (those given an
    `augmentation`) are shuffled and augmented in parallel."""
    dataset = transformed_examples(
        file_pattern,
        data_accessor,
        tf_transform_output,
        batch_size,
        shuffle=augmentation is not None,
    )
    return network_batches(dataset, augmentation)


def network_batches(
    dataset: tf.data.Dataset, augmentation: Augmentation | None = None
) -> tf.data.Dataset:
    """(features, label) batches reduced to the network's input, augmented (in parallel) when
    an augmentation is given: training batches."""
    if augmentation is not None:
        dataset = dataset.map(
            lambda features, label: augmentation(features[IMAGE_XF], label),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        dataset = dataset.map(lambda features, label: ({IMAGE_XF: features[IMAGE_XF]}, label))
    return dataset.prefetch(tf.data.AUTOTUNE)


def class_names_of(dataset: tf.data.Dataset) -> list[str]:
    """The class names that ingestion recorded beside the labels, in label id order."""
    names: dict[int, str] = {}
    for features, labels in dataset:
        for label, name in zip(labels.numpy(), features[CLASS_NAME_XF].numpy(), strict=True):
            known = names.setdefault(int(label), name.decode())
            if known != name.decode():
                raise ValueError(f"Label {label} is named both {known!r} and {name.decode()!r}")
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"Label ids {sorted(names)} are not 0 .. {len(names) - 1}")
    return [names[label] for label in range(len(names))]


def channel_scaling(tf_transform_output: tft.TFTransformOutput) -> tuple[list, list]:
    """The photo Transform graph's per-channel means and deviations, read back from what it
    makes of a black and a white picture: -mean / deviation and (1 - mean) / deviation."""
    pictures = [tf.io.encode_png(tf.fill([8, 8, 3], tf.constant(v, tf.uint8))) for v in (0, 255)]
    spec = tf_transform_output.raw_feature_spec()[IMAGE_KEY]
    raw = {IMAGE_KEY: as_raw_image_feature(tf.stack(pictures), spec)}
    images = tf_transform_output.transform_features_layer()(raw)[IMAGE_XF].numpy()
    black, white = images[0, 0, 0], images[1, 0, 0]
    deviations = 1 / (white - black)
    return (-black * deviations).tolist(), deviations.tolist()


def cosine_decay(initial_learning_rate: float, epochs: int):
    """Learning rate for each epoch, from the initial value down to zero along a cosine."""
    return lambda epoch: initial_learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / epochs))


def warm_start_weights(base_model_dir: str | None, class_names: list[str]) -> list | None:
    """The network weights of the model to warm-start from (the Trainer's `base_model`, the last
    blessed one), when it names the same classes in the same order; None means from scratch."""
    if not base_model_dir:
        return None
    base_classes = read_class_names(base_model_dir)
    if base_classes != class_names:
        logging.warning(
            "Training from scratch: the last blessed model %s names the classes %s, the data %s",
            base_model_dir,
            base_classes,
            class_names,
        )
        return None
    logging.info("Warm-starting from the last blessed model %s", base_model_dir)
    return keras.models.load_model(base_model_dir, compile=False).get_weights()


class StartupTime(keras.callbacks.Callback):
    """Logs the time from `started` (the Trainer's start) to the end of the first training
    step: the start-up every run pays (reading the transform graph, class names, building the
    input pipeline and the model, tracing) before steady training."""

    def __init__(self, started: float):
        super().__init__()
        self.started = started

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if batch == 0 and self.started is not None:
            logging.info(
                "Start-up: first training step done %.1f s after the Trainer began",
                time.monotonic() - self.started,
            )
            self.started = None


def train(
    config: TrainingConfig,
    num_classes: int,
    train_dataset: tf.data.Dataset,
    eval_dataset: tf.data.Dataset,
    strategy: tf.distribute.Strategy,
    log_dir: str | None = None,
    initial_weights: list | None = None,
    started: float | None = None,
    profile: ImageProfile = DIGITS_PROFILE,
    backbone: tuple[str, str, tuple] | None = None,
) -> tuple[keras.Model, keras.callbacks.History]:
    """Fits the network, fresh or from `initial_weights` when their shapes fit (a warm start);
    stops early when the validation loss stalls and keeps the best weights."""
    with strategy.scope():
        model = build_model(
            num_classes,
            config.learning_rate,
            members=config.ensemble_members,
            label_smoothing=config.label_smoothing,
            jit_compile=config.jit_compile,
            profile=profile,
            photo_width=config.photo_width,
            backbone=backbone,
        )
        if initial_weights is not None:
            shapes = [weight.shape for weight in model.get_weights()]
            if [weight.shape for weight in initial_weights] == shapes:
                model.set_weights(initial_weights)
            else:
                logging.warning("Training from scratch: the base model's layers differ")
    callbacks = [
        keras.callbacks.LearningRateScheduler(cosine_decay(config.learning_rate, config.epochs)),
        keras.callbacks.EarlyStopping(
            # The loss, not the accuracy: on a few hundred validation digits the accuracy moves
            # by whole digits and ties, and the best epoch it kept could come mid-schedule.
            monitor="val_loss",
            patience=config.early_stopping_patience,
            restore_best_weights=True,
            # Not in the schedule's first half: the learning rate is still high there and
            # validation accuracy jumps about; stopping then left models a point worse.
            start_from_epoch=config.epochs // 2,
        ),
    ]
    if log_dir:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir))
    callbacks.append(StartupTime(time.monotonic() if started is None else started))
    history = model.fit(
        train_dataset,
        validation_data=eval_dataset,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=2,
    )
    return model, history


def answers(model: keras.Model, dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The model's class probabilities [N, classes] and the labels [N] of a (features, label)
    dataset."""
    probabilities, labels = [], []
    for features, label in dataset:
        probabilities.append(model(features[IMAGE_XF], training=False).numpy())
        labels.append(label.numpy().reshape(-1))
    return np.concatenate(probabilities), np.concatenate(labels)


def calibrate(model: keras.Model, dataset: tf.data.Dataset, profile: ImageProfile) -> dict:
    """The temperature that calibrates the model on the validation split, with the split's
    expected calibration error before and after it, and the network's own top probability
    under which a digit is held unsure (`unfamiliar_below`; 0 for photos, whose Trainer shows
    the network no pictures of no class)."""
    probabilities, labels = answers(model, dataset)
    temperature = fit_temperature(probabilities, labels)
    facts = {
        "temperature": temperature,
        "validation_examples": len(labels),
        "ece_before": reliability(probabilities, labels)[1],
        "ece_after": reliability(scaled(probabilities, temperature), labels)[1],
        "unfamiliar_below": (
            unfamiliar_below(probabilities, labels) if profile.name == DIGITS else 0.0
        ),
    }
    logging.info(
        "Calibration: temperature %.3f on %d validation examples; ECE %.4f -> %.4f; "
        "unsure under a top probability of %.3f",
        temperature,
        len(labels),
        facts["ece_before"],
        facts["ece_after"],
        facts["unfamiliar_below"],
    )
    return facts


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Called by the TFX Trainer: trains on the transformed train split, selects on the
    validation split (the Trainer's eval_args), exports the serving SavedModel."""
    started = time.monotonic()
    config = TrainingConfig.from_custom_config(fn_args.custom_config)
    profile = ImageProfile.from_json(fn_args.custom_config.get(IMAGE_PROFILE_CONFIG))
    keras.utils.set_random_seed(config.seed)
    use_mixed_precision_on_gpus()
    strategy = distribution_strategy()
    global_batch_size = config.batch_size * strategy.num_replicas_in_sync
    logging.info(
        "Training on %d replica(s), global batch %d: %s",
        strategy.num_replicas_in_sync,
        global_batch_size,
        config,
    )

    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    transformed = tuple(tf_transform_output.transformed_feature_spec()[IMAGE_XF].shape)
    if transformed != profile.shape:  # Transform and the Trainer were given different profiles
        raise ValueError(f"Transform's images are {transformed}, but the Trainer's {profile}")

    def dataset(files: list[str], augmentation: Augmentation | None = None) -> tf.data.Dataset:
        return make_dataset(
            files, fn_args.data_accessor, tf_transform_output, global_batch_size, augmentation
        )

    def train_split(batch_size: int, shuffle: bool, feature: str) -> tf.data.Dataset:
        return transformed_examples(
            fn_args.train_files,
            fn_args.data_accessor,
            tf_transform_output,
            batch_size,
            shuffle=shuffle,
            features=(feature,),
        )

    # Labels and class names only: decoding the images too made this pass a large part of the
    # Trainer's time on large data (the scaling benchmark).
    class_names = class_names_of(train_split(4096, False, CLASS_NAME_XF))
    logging.info("%d classes: %s", len(class_names), class_names)
    if profile.name == DIGITS:
        augmentation = training_augmentation(
            config, *bank_digits(train_split(1024, True, IMAGE_XF)), class_names
        )
    else:  # photos: no ink to render as digits arrive
        augmentation = Augmentation([], build_augmentation(profile, config.photo_flip))
    backbone = None
    if config.backbone and profile.name == DIGITS:
        raise ValueError(f"BACKBONE={config.backbone} fine-tunes on photos, not on digits")
    if config.backbone:
        weights = str(weights_path(config.backbone))
        backbone = (config.backbone, weights, channel_scaling(tf_transform_output))
    model, history = train(
        config,
        len(class_names),
        dataset(fn_args.train_files, augmentation),
        dataset(fn_args.eval_files),
        strategy,
        log_dir=fn_args.model_run_dir,
        initial_weights=warm_start_weights(fn_args.base_model, class_names),
        started=started,
        profile=profile,
        backbone=backbone,
    )
    calibration = calibrate(model, dataset(fn_args.eval_files), profile)
    # Per-epoch metrics for the run report's training curves, and the calibration.
    with tf.io.gfile.GFile(f"{fn_args.model_run_dir}/{HISTORY_FILE}", "w") as history_file:
        json.dump(history.history, history_file, default=float)
    with tf.io.gfile.GFile(f"{fn_args.model_run_dir}/{CALIBRATION_FILE}", "w") as facts_file:
        json.dump(calibration, facts_file)
    # Every worker of a cluster must save (it is a collective op); only the chief's copy counts.
    is_chief = cluster_workers(os.environ.get("TF_CONFIG"))[1]
    export_dir = fn_args.serving_model_dir if is_chief else tempfile.mkdtemp()
    export_model(
        model,
        tf_transform_output,
        export_dir,
        class_names,
        calibration["temperature"],
        calibration["unfamiliar_below"],
        profile,
    )
