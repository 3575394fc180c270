"""The networks an ensemble averages, each image -> class probabilities: MNIST's small CNN for
digits; for photos, a CNN sized to the input or an ImageNet network from Keras' applications to
fine-tune (trainer/backbones.py)."""

import tensorflow as tf
import tf_keras as keras
from tf_keras import layers

from trainer.features import DIGITS_PROFILE


def conv_block(x, filters: int, pool: bool = True, padding: str = "valid", strides: int = 1):
    """3x3 convolution, batch normalisation, ReLU, then 2x2 max pooling."""
    x = layers.Conv2D(filters, 3, strides=strides, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)  # settles within a few hundred steps
    x = layers.Activation("relu")(x)
    return layers.MaxPooling2D()(x) if pool else x


def build_member(num_classes: int, dropout: float, name: str) -> keras.Model:
    """One convolutional network: 28x28x1 image in [0, 1] -> class probabilities."""
    inputs = keras.Input(shape=DIGITS_PROFILE.shape)
    x = conv_block(inputs, 32)  # 26x26 -> 13x13
    x = conv_block(x, 64)  # 11x11 -> 5x5
    x = conv_block(x, 128, pool=False)  # 3x3
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def build_photo_member(
    shape: tuple[int, int, int], num_classes: int, width: int, dropout: float, name: str
) -> keras.Model:
    """One convolutional network for photos of any size: `width` filters in its first
    convolution (strided for inputs over 32 pixels), then a block per halving with twice the
    filters of the one before (up to 8x `width`) until 8 pixels or fewer remain, and global
    average pooling."""
    inputs = keras.Input(shape=shape)
    x, side, filters = inputs, min(shape[:2]), width
    if side > 32:
        x, side = conv_block(x, width, pool=False, padding="same", strides=2), side // 2
        filters = 2 * width
    while side > 8:
        x, side = conv_block(x, filters, padding="same"), side // 2
        filters = min(2 * filters, 8 * width)
    x = conv_block(x, filters, pool=False, padding="same")
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


class Unscaled(layers.Layer):
    """Per-channel scaled photos back to pixel values in [0, 255], as Keras' ImageNet networks
    take them: the Transform graph's scaling undone with its own means and deviations."""

    def __init__(self, means: list[float], deviations: list[float], **kwargs):
        super().__init__(**kwargs)
        self.means, self.deviations = list(means), list(deviations)

    def call(self, images: tf.Tensor) -> tf.Tensor:
        deviations = tf.constant(self.deviations, images.dtype)  # float16 under mixed precision
        return (images * deviations + tf.constant(self.means, images.dtype)) * 255.0

    def get_config(self) -> dict:
        return {**super().get_config(), "means": self.means, "deviations": self.deviations}


# Keras' ImageNet networks without their classifier, averaged over space; each rescales pixel
# values itself.
BACKBONES = {
    "mobilenet_v3_small": lambda shape, weights: keras.applications.MobileNetV3Small(
        input_shape=shape, include_top=False, weights=weights, pooling="avg"
    ),
    "efficientnet_b0": lambda shape, weights: keras.applications.EfficientNetB0(
        input_shape=shape, include_top=False, weights=weights, pooling="avg"
    ),
}


def build_backbone_member(
    backbone: str,
    weights: str,
    shape: tuple[int, int, int],
    scaling: tuple[list[float], list[float]],
    num_classes: int,
    dropout: float,
    name: str,
) -> keras.Model:
    """An ImageNet network from the `weights` file, fine-tuned: the photo's pixel values back
    from the per-channel `scaling` (grey repeated into three channels), the network's pooled
    features, dropout and a new classifier."""
    inputs = keras.Input(shape=shape)
    x = Unscaled(*scaling)(inputs)
    if shape[-1] == 1:
        x = layers.Concatenate()([x, x, x])
    features = BACKBONES[backbone]((*shape[:2], 3), weights)
    features._name = f"{name}_{backbone}"  # each member's own: layer names must be unique
    x = layers.Dropout(dropout)(features(x))
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)
