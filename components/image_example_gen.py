"""ImageExampleGen: a file-based ExampleGen whose Beam executor reads images stored the way image
data sets are stored, into the project's raw format (`image` bytes, `label` int64).

- Image folders in `keras.utils.image_dataset_from_directory`'s layout, `<root>/<class>/<file>`
  (PNG, JPEG, BMP, GIF): the file's own bytes; label ids are the sorted class folder names.
- MNIST IDX files (`*-images-idx3-ubyte` with `*-labels-idx1-ubyte`, gzipped or not): each image
  encoded as PNG.
- TFRecord files of raw tf.Examples (a name containing "tfrecord", gzipped when it ends in .gz),
  as they are: so that one ExampleGen reads a TEST_DATA set stored unlike the training data.

Being a FileBasedExampleGen, it honours `input_config` (given splits), `output_config` (hash
split; validation is carved out of a train split given without one, see components/splits.py)
and `{SPAN}`/`{VERSION}` in split patterns. Files that do not decode as images are skipped,
counted and logged with their paths; the component fails when their share exceeds
`max_bad_fraction`.
"""

import hashlib
import io
import os
from pathlib import PurePath
from typing import NamedTuple

import apache_beam as beam
import tensorflow as tf
from absl import logging
from google.protobuf import json_format, struct_pb2
from PIL import Image
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs

from components.data.codecs import encode_png, is_idx_images, read_idx
from components.data.sample import make_example
from components.spans import SpanRecordingExecutor
from components.splits import ValidationCarvingExecutor
from trainer.features import IMAGE_SUFFIXES

MAX_BAD_FRACTION_KEY = "max_bad_fraction"


class BadImagesError(ValueError):
    """Too many input files are not decodable images."""


def image_problem(data: bytes) -> str | None:
    """Why `data` is not a usable image (None when it is one)."""
    if not data:
        return "empty file"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decodes every pixel: catches truncated files
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    try:  # what Pillow reads TensorFlow may not (a 1-bit BMP): the Transform graph decodes
        tf.io.decode_image(data, expand_animations=False)
    except tf.errors.OpError as error:
        return f"TensorFlow cannot decode it: {error.message.split('}}')[-1].strip()[:200]}"
    return None


def class_names_of(files: list[str]) -> list[str]:
    """Sorted class folder names under the folders that hold the class folders (a class folder
    without images is refused before the run: pipeline/data_source.py)."""
    roots = {os.path.dirname(os.path.dirname(path)) for path in files}
    return sorted(
        {
            name
            for root in roots
            for name in fileio.listdir(root)
            if fileio.isdir(os.path.join(root, name))
        }
    )


def labels_file_for(images_path: str) -> str:
    """`train-images-idx3-ubyte.gz` -> `train-labels-idx1-ubyte.gz` in the same folder."""
    return images_path.replace("images-idx3-ubyte", "labels-idx1-ubyte")


class Record(NamedTuple):
    """One input image, read."""

    source: str  # file path, or "<idx file>#<index>"
    image: bytes  # encoded
    label: int
    class_name: str
    problem: str | None  # why the bytes are no usable image; None for good ones


def read_idx_pair(images_path: str) -> list[Record]:
    """A record for each image of an IDX pair, encoded as PNG; class names are the digits."""
    labels_path = labels_file_for(images_path)
    if not fileio.exists(labels_path):
        raise FileNotFoundError(f"{images_path} has no labels file {labels_path}")
    images, labels = read_idx(PurePath(images_path)), read_idx(PurePath(labels_path))
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels"
        )
    return [
        Record(f"{images_path}#{i}", encode_png(image), int(label), str(label), None)
        for i, (image, label) in enumerate(zip(images, labels, strict=True))
    ]


def read_image_file(path: str, label: int, class_name: str) -> Record:
    with fileio.open(path, "rb") as stream:
        data = stream.read()
    return Record(path, data, label, class_name, image_problem(data))


def is_tfrecords(path: str) -> bool:
    return "tfrecord" in os.path.basename(path).lower()


def split_files(exec_properties: dict, split_pattern: str) -> list[str]:
    """The files one split pattern names, under the input base (or absolute, as TEST_DATA's)."""
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    return sorted(fileio.glob(pattern))


def class_ids(exec_properties: dict) -> dict[str, int]:
    """Class folder name -> label id, from the class folders of every split, so that a class
    has the same id in train and test even when one split lacks it."""
    config = example_gen_pb2.Input()
    json_format.Parse(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], config)
    files = [
        path
        for split in config.splits
        for path in split_files(exec_properties, split.pattern)
        if path.lower().endswith(IMAGE_SUFFIXES)
    ]
    return {name: i for i, name in enumerate(class_names_of(files))}


def _max_bad_fraction(exec_properties: dict) -> float:
    custom_config = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if not custom_config:
        return 0.01
    parsed = json_format.Parse(custom_config, example_gen_pb2.CustomConfig())
    settings = struct_pb2.Struct()
    parsed.custom_config.Unpack(settings)
    return settings[MAX_BAD_FRACTION_KEY]


def _check_bad_share(counts: tuple[int, int], bad: list[str], max_bad_fraction: float) -> None:
    good, total = counts
    if total and (total - good) / total > max_bad_fraction:
        raise BadImagesError(
            f"{total - good} of {total} input files are not decodable images "
            f"(more than {max_bad_fraction:.1%}): " + "; ".join(sorted(bad)[:20])
        )


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _ImagesToExample(pipeline: beam.Pipeline, exec_properties: dict, split_pattern: str):  # noqa: N802
    paths = split_files(exec_properties, split_pattern)
    idx_images = [p for p in paths if is_idx_images(PurePath(p))]
    image_files = [p for p in paths if p.lower().endswith(IMAGE_SUFFIXES)]  # others are ignored
    tfrecords = [p for p in paths if is_tfrecords(p) and not is_idx_images(PurePath(p))]
    if not idx_images and not image_files and not tfrecords:
        raise FileNotFoundError(
            f"No image, IDX or TFRecord files match {split_pattern} under "
            f"{exec_properties[standard_component_specs.INPUT_BASE_KEY]}"
        )
    sources = []
    if idx_images:
        sources.append(
            pipeline | "IdxFiles" >> beam.Create(idx_images) | beam.FlatMap(read_idx_pair)
        )
    if image_files:
        ids = class_ids(exec_properties)
        logging.info("Classes of %s: %s", split_pattern, list(ids))
        folders = [os.path.basename(os.path.dirname(path)) for path in image_files]
        labelled = [(p, ids[name], name) for p, name in zip(image_files, folders, strict=True)]
        # In an order that mixes the classes, fixed by each file's class and name: training's
        # shuffle buffer holds a part of a large split, and sorted paths would fill it with
        # one or two classes at a time.
        labelled.sort(
            key=lambda item: hashlib.sha256(f"{item[2]}/{PurePath(item[0]).name}".encode()).digest()
        )
        sources.append(
            pipeline | "ImageFiles" >> beam.Create(labelled) | beam.MapTuple(read_image_file)
        )
    if not sources:  # TFRecords only
        sources.append(pipeline | "NoImages" >> beam.Create([]))
    records = sources | beam.Flatten()
    bad = (
        records
        | "Bad" >> beam.Filter(lambda r: r.problem is not None)
        | beam.Map(lambda r: f"{r.source} ({r.problem})")
    )
    _ = bad | "LogBad" >> beam.Map(lambda line: logging.warning("Skipped %s", line))
    counts = (
        records
        | beam.Map(lambda r: (int(r.problem is None), 1))
        | beam.CombineGlobally(lambda pairs: tuple(map(sum, zip(*pairs, strict=True))) or (0, 0))
    )
    _ = counts | beam.Map(
        _check_bad_share,
        bad=beam.pvalue.AsList(bad),
        max_bad_fraction=_max_bad_fraction(exec_properties),
    )
    examples = (
        records
        | "Good" >> beam.Filter(lambda r: r.problem is None)
        | beam.Map(lambda r: make_example(r.image, r.label, r.class_name))
    )
    if not tfrecords:
        return examples
    stored = (
        pipeline
        | "TFRecordFiles" >> beam.Create(tfrecords)
        | beam.io.ReadAllFromTFRecord()
        | beam.Map(tf.train.Example.FromString)
    )
    return (examples, stored) | "WithTFRecords" >> beam.Flatten()


class Executor(SpanRecordingExecutor, ValidationCarvingExecutor, BaseExampleGenExecutor):
    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802
        return _ImagesToExample


IMAGE_EXAMPLE_GEN_ID = "ImageExampleGen"  # the node id of the component below


def image_example_gen(
    input_base: str,
    input_config: example_gen_pb2.Input | None = None,
    output_config: example_gen_pb2.Output | None = None,
    range_config=None,
    max_bad_fraction: float = 0.01,
) -> FileBasedExampleGen:
    settings = struct_pb2.Struct()
    settings[MAX_BAD_FRACTION_KEY] = max_bad_fraction
    custom_config = example_gen_pb2.CustomConfig()
    custom_config.custom_config.Pack(settings)
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=input_config,
        output_config=output_config,
        range_config=range_config,
        custom_config=custom_config,
        custom_executor_spec=executor_spec.BeamExecutorSpec(Executor),
    ).with_id(IMAGE_EXAMPLE_GEN_ID)
