"""The convolutional network, readable top to bottom."""

import tf_keras as keras
from tf_keras import layers

from trainer.features import (
    IMAGE_KEY,
    IMAGE_SHAPE,
    PROBABILITIES_OUTPUT,
    transformed_name,
)


def build_augmentation() -> keras.Sequential:
    """Small random shifts, rotations and zoom, applied to training batches only."""
    return keras.Sequential(
        [
            layers.RandomRotation(0.05, fill_mode="constant"),
            layers.RandomTranslation(0.1, 0.1, fill_mode="constant"),
            layers.RandomZoom(0.1, fill_mode="constant"),
        ],
        name="augmentation",
    )


def conv_block(x, filters: int, pool: bool = True):
    """3x3 convolution, batch normalisation, ReLU, then 2x2 max pooling."""
    x = layers.Conv2D(filters, 3, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)  # settles within a few hundred steps
    x = layers.Activation("relu")(x)
    return layers.MaxPooling2D()(x) if pool else x


def build_model(
    num_classes: int, learning_rate: float, dropout: float = 0.4, jit_compile: bool = False
) -> keras.Model:
    """28x28x1 image in [0, 1] -> class probabilities (float32 even under mixed precision)."""
    inputs = keras.Input(shape=IMAGE_SHAPE, name=transformed_name(IMAGE_KEY))
    x = conv_block(inputs, 32)  # 26x26 -> 13x13
    x = conv_block(x, 64)  # 11x11 -> 5x5
    x = conv_block(x, 128, pool=False)  # 3x3
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(
        num_classes, activation="softmax", dtype="float32", name=PROBABILITIES_OUTPUT
    )(x)
    model = keras.Model(inputs, outputs, name="mnist_cnn")

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model
