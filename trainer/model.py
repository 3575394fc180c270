"""The model, readable top to bottom: a small ensemble of convolutional networks
(trainer/networks.py: MNIST's small one for digits, one sized to the input for photos) whose
class probabilities are averaged inside the one exported model, its training augmentation and
its loss."""

import tensorflow as tf
import tf_keras as keras
from tf_keras import layers

from trainer.compat import leave_tf_keras_to_run_as_written
from trainer.features import (
    DIGITS,
    DIGITS_PROFILE,
    IMAGE_KEY,
    PROBABILITIES_OUTPUT,
    ImageProfile,
    transformed_name,
)
from trainer.networks import build_backbone_member, build_member, build_photo_member

leave_tf_keras_to_run_as_written()  # trainer/compat.py: 20 s of the Trainer's start-up


class RandomStrokes(layers.Layer):
    """Strokes as pictures that people send leave them after the normalisation: thicker or
    thinner (a broad pen, a fine one, a small digit enlarged), softer (blurred) or fainter at
    their edges. Half the images stay as they are (MNIST's own strokes), the others are
    thickened, thinned or blurred; then a random gamma. Identity outside training."""

    SHARES = (0.5, 0.15, 0.15, 0.2)  # as it is, thicker, thinner, softer

    def __init__(self, max_gamma: float = 1.25, **kwargs):
        super().__init__(**kwargs)
        self.max_gamma = max_gamma

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        if not training:
            return images
        batch = tf.shape(images)[0]
        kinds = [
            images,
            tf.nn.max_pool2d(images, 2, 1, "SAME"),  # thicker
            -tf.nn.max_pool2d(-images, 2, 1, "SAME"),  # thinner
            tf.nn.avg_pool2d(images, 3, 1, "SAME"),  # softer
        ]
        picked = tf.random.categorical(tf.math.log([self.SHARES]), batch)[0]
        choice = tf.one_hot(picked, len(kinds), dtype=images.dtype)
        mixed = tf.einsum("bk,kbhwc->bhwc", choice, tf.stack(kinds))
        spread = tf.math.log(tf.cast(self.max_gamma, images.dtype))  # float16 under mixed precision
        gamma = tf.exp(tf.random.uniform([batch, 1, 1, 1], -1.0, 1.0, images.dtype) * spread)
        return tf.pow(tf.clip_by_value(mixed, 0.0, 1.0), gamma)

    def get_config(self) -> dict:
        return {**super().get_config(), "max_gamma": self.max_gamma}


class RandomColour(layers.Layer):
    """Lighting and colour as photos vary: each image's brightness shifted, its contrast and
    each channel's gain scaled a little (on per-channel scaled input, so in standard
    deviations). Identity outside training."""

    def __init__(self, strength: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        self.strength = strength

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        if not training:
            return images
        batch, channels = tf.shape(images)[0], tf.shape(images)[3]
        kind, strength = images.dtype, self.strength  # float16 under mixed precision
        brightness = tf.random.uniform([batch, 1, 1, 1], -strength, strength, kind)
        contrast = tf.random.uniform([batch, 1, 1, 1], 1 - strength, 1 + strength, kind)
        gain = tf.random.uniform([batch, 1, 1, channels], 1 - strength / 2, 1 + strength / 2, kind)
        mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
        return (images - mean) * contrast * gain + mean + brightness

    def get_config(self) -> dict:
        return {**super().get_config(), "strength": self.strength}


def build_augmentation(
    profile: ImageProfile = DIGITS_PROFILE, flip: bool = True
) -> keras.Sequential:
    """Applied to training batches only. Digits: small random shifts, rotations and zoom, and
    stroke variations. Photos: mirror images (unless `flip` is off: data where a mirror
    changes the class), shifts and zoom with the picture's own edges, and lighting."""
    if profile.name != DIGITS:
        return keras.Sequential(
            [
                *([layers.RandomFlip("horizontal")] if flip else []),
                layers.RandomTranslation(0.1, 0.1, fill_mode="reflect"),
                layers.RandomZoom(0.15, fill_mode="reflect"),
                RandomColour(),
            ],
            name="augmentation",
        )
    return keras.Sequential(
        [
            layers.RandomRotation(0.05, fill_mode="constant"),
            layers.RandomTranslation(0.1, 0.1, fill_mode="constant"),
            layers.RandomZoom(0.1, fill_mode="constant"),
            RandomStrokes(),
        ],
        name="augmentation",
    )


class Ensemble(keras.Model):
    """The mean of its members' class probabilities. Training fits every member to the labels on
    its own (the sum of their losses), so their mistakes differ and the mean is right more often
    than any one of them (`make bench` measures by how much); serving runs one model."""

    def __init__(self, members: list[keras.Model], **kwargs):
        inputs = keras.Input(shape=members[0].input_shape[1:], name=transformed_name(IMAGE_KEY))
        member_outputs = [member(inputs) for member in members]
        outputs = (
            layers.Average(name=PROBABILITIES_OUTPUT, dtype="float32")(member_outputs)
            if len(members) > 1
            else member_outputs[0]
        )
        super().__init__(inputs, outputs, **kwargs)
        self.each_member = keras.Model(inputs, member_outputs)  # the same layers, one output each

    def train_step(self, data):
        images, labels = data
        with tf.GradientTape() as tape:
            probabilities = tf.nest.flatten(self.each_member(images, training=True))
            loss = tf.add_n([self.compute_loss(images, labels, p) for p in probabilities])
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        mean = tf.add_n(probabilities) / len(probabilities)
        return self.compute_metrics(images, labels, mean, sample_weight=None)


# The training label of pictures that show no one class (two digits, a word): their target is
# the uniform distribution, so the network learns to be unsure of them ("outlier exposure",
# Hendrycks et al., 2019).
NOT_ONE_CLASS = -1


def smoothed_crossentropy(num_classes: int, smoothing: float):
    """Cross-entropy against labels softened by `smoothing` (the network is not pushed towards
    certainty on the few thousand digits it trains on), and against the uniform distribution
    for NOT_ONE_CLASS."""

    def loss(labels: tf.Tensor, probabilities: tf.Tensor) -> tf.Tensor:
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        targets = tf.where(
            (labels == NOT_ONE_CLASS)[:, None],
            1.0 / num_classes,
            tf.one_hot(labels, num_classes),
        )
        return keras.losses.categorical_crossentropy(
            targets, probabilities, label_smoothing=smoothing
        )

    return loss


def build_model(
    num_classes: int,
    learning_rate: float,
    members: int = 3,
    label_smoothing: float = 0.1,
    dropout: float = 0.4,
    jit_compile: bool = False,
    profile: ImageProfile = DIGITS_PROFILE,
    photo_width: int = 16,
    backbone: tuple[str, str, tuple] | None = None,
) -> keras.Model:
    """Image in the profile's shape -> class probabilities (float32 even under mixed
    precision). Photos with a `backbone` (its name, weights file and the Transform graph's
    per-channel scaling) fine-tune it."""
    if profile.name == DIGITS:
        networks = [build_member(num_classes, dropout, f"member_{i}") for i in range(members)]
    elif backbone:
        name, weights, scaling = backbone
        networks = [
            build_backbone_member(
                name, weights, profile.shape, scaling, num_classes, dropout, f"member_{i}"
            )
            for i in range(members)
        ]
    else:
        networks = [
            build_photo_member(profile.shape, num_classes, photo_width, dropout, f"member_{i}")
            for i in range(members)
        ]
    model = Ensemble(networks, name="mnist_cnn" if profile.name == DIGITS else "photo_cnn")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=smoothed_crossentropy(num_classes, label_smoothing),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model
