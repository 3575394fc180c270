"""Fixtures shared by unit tests across folders: real digits, a real Transform graph, a trained
model. Each folder's conftest.py imports the ones it uses."""

import contextlib
import functools
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
import tf_keras as keras
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io

from components.data import colour_shapes
from components.data.codecs import encode_png
from components.data.sample import load_sample
from trainer.export import export_model
from trainer.features import (
    CLASS_NAME_KEY,
    IMAGE_KEY,
    IMAGE_PROFILE_CONFIG,
    LABEL_KEY,
    MNIST_CLASS_NAMES,
    PHOTOS,
    ImageProfile,
)
from trainer.model import build_model
from trainer.preprocessing import preprocessing_fn

# The raw feature spec that SchemaGen infers for the project's raw format.
RAW_FEATURE_SPEC = {
    IMAGE_KEY: tf.io.FixedLenFeature([1], tf.string),
    LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
    CLASS_NAME_KEY: tf.io.FixedLenFeature([1], tf.string),
}


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """64 real MNIST digits, uint8 [64, 28, 28], and their labels."""
    return load_sample(64, seed=1)


@pytest.fixture(scope="session")
def png_digits(digits) -> list[bytes]:
    return [encode_png(pixels) for pixels in digits[0]]


def write_transform_output(
    output_dir: Path, instances: list[dict], custom_config: dict | None = None
) -> tft.TFTransformOutput:
    """The project's Transform graph for raw `instances`, written by tf.Transform on Beam's
    DirectRunner, with Transform's `custom_config` (the image profile)."""
    metadata = dataset_metadata.DatasetMetadata.from_feature_spec(RAW_FEATURE_SPEC)
    preprocessing = functools.partial(preprocessing_fn, custom_config=custom_config)
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=str(output_dir / "tmp")):
        transform_fn = (
            pipeline | beam.Create(instances),
            metadata,
        ) | tft_beam.AnalyzeDataset(preprocessing)
        _ = transform_fn | tft_beam.WriteTransformFn(str(output_dir))
    metadata_io.write_metadata(  # the raw schema, as TFX's Transform also writes it
        metadata, str(output_dir / tft.TFTransformOutput.RAW_METADATA_DIR)
    )
    return tft.TFTransformOutput(str(output_dir))


def raw_instances(images: list[bytes], labels, class_names) -> list[dict]:
    return [
        {IMAGE_KEY: [image], LABEL_KEY: [int(label)], CLASS_NAME_KEY: [class_names[label]]}
        for image, label in zip(images, labels, strict=True)
    ]


@pytest.fixture(scope="session")
def transform_output(tmp_path_factory, png_digits, digits) -> tft.TFTransformOutput:
    """The project's Transform graph for digits."""
    output_dir = tmp_path_factory.mktemp("transform_output")
    return write_transform_output(
        output_dir, raw_instances(png_digits, digits[1], MNIST_CLASS_NAMES)
    )


PHOTO_PROFILE = ImageProfile(PHOTOS, 32, 32, 3)


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> tuple[list[bytes], np.ndarray]:
    """60 generated colour pictures (components/data/colour_shapes.py) of 48-128 pixels, as
    JPEG files hold them, and their labels (ids into colour_shapes.CLASS_NAMES)."""
    folder = tmp_path_factory.mktemp("photos") / "shapes"
    colour_shapes.write(folder, count=60)
    files = sorted(folder.glob("*/*.jpg"))
    labels = np.array([colour_shapes.CLASS_NAMES.index(f.parent.name) for f in files])
    return [f.read_bytes() for f in files], labels


@pytest.fixture(scope="session")
def photo_transform_output(tmp_path_factory, photos) -> tft.TFTransformOutput:
    """The project's Transform graph for PHOTO_PROFILE."""
    output_dir = tmp_path_factory.mktemp("photo_transform_output")
    instances = raw_instances(*photos, colour_shapes.CLASS_NAMES)
    config = {IMAGE_PROFILE_CONFIG: PHOTO_PROFILE.to_json()}
    return write_transform_output(output_dir, instances, config)


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory, transform_output):
    """A SavedModel with both signatures, trained briefly on 2,000 sample digits (about 95 %
    accurate), exported as version 1 under a TF Serving base path."""
    pixels, labels = load_sample(2000, seed=2)
    keras.utils.set_random_seed(0)  # the same model on every run: tests bound its accuracy
    model = build_model(len(MNIST_CLASS_NAMES), learning_rate=2e-3, members=1)  # quick
    model.fit(pixels[..., None] / 255.0, labels, batch_size=32, epochs=3, verbose=0)
    base_path = tmp_path_factory.mktemp("serving_model")
    export_model(model, transform_output, str(base_path / "1"), list(MNIST_CLASS_NAMES))
    return base_path


@contextlib.contextmanager
def small_filesystem(mount_point: Path, size_bytes: int) -> Iterator[Path]:
    """A tmpfs of `size_bytes` at `mount_point`, for full-disk tests; the test is skipped, with
    the reason, where mounting is not allowed (not root, no CAP_SYS_ADMIN)."""
    mount_point.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode:
        pytest.skip(f"a full-disk test needs a small tmpfs: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def fill(folder: Path, leave_free: int) -> None:
    """Fills the file system of `folder` until `leave_free` bytes are free."""
    free = shutil.disk_usage(folder).free
    (folder / "filler").write_bytes(b"\0" * max(0, free - leave_free))
