"""ImageExampleGen in a real one-component TFX pipeline (Beam DirectRunner, SQLite ML Metadata)
on image folders and IDX files that the tests write."""

import io
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata import metadata_store
from PIL import Image
from tfx import v1 as tfx

from components.data.codecs import encode_png, write_idx
from components.data.sample import load_sample, make_example
from components.image_example_gen import image_example_gen, image_problem
from trainer.features import IMAGE_KEY, LABEL_KEY


def encoded(size: tuple[int, int], mode: str, image_format: str, value: int = 128) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color=value if mode == "L" else (value, 20, 200)).save(
        buffer, format=image_format
    )
    return buffer.getvalue()


def class_tree(root: Path, bad: bool) -> dict[str, int]:
    """cat/ and dog/ with PNG and JPEG files of several sizes and modes, an empty class folder,
    and (if `bad`) a truncated PNG, a text file named .png and a zero-byte file. Returns the
    expected number of good examples per label id."""
    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    (root / "zebra_empty").mkdir()
    (root / "cat" / "a.png").write_bytes(encoded((28, 28), "L", "PNG"))
    (root / "cat" / "b.jpg").write_bytes(encoded((40, 30), "RGB", "JPEG"))
    (root / "cat" / "notes.txt").write_text("not an image, and not named like one: ignored")
    (root / "dog" / "c.png").write_bytes(encoded((64, 64), "RGB", "PNG"))
    (root / "dog" / "d.bmp").write_bytes(encoded((20, 28), "L", "BMP"))
    (root / "dog" / "e.gif").write_bytes(encoded((28, 28), "L", "GIF"))
    if bad:
        (root / "cat" / "truncated.png").write_bytes(encoded((28, 28), "L", "PNG")[:40])
        (root / "dog" / "text.png").write_text("hello")
        (root / "dog" / "zero.jpg").write_bytes(b"")
    return {0: 2, 1: 3}


def run_example_gen(tmp_path: Path, example_gen) -> Path:
    """Runs the component alone and returns its Examples artifact's folder."""
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="ingest",
        pipeline_root=str(tmp_path / "root"),
        components=[example_gen],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(tmp_path / "metadata.sqlite")
        ),
    )
    tfx.orchestration.LocalDagRunner().run(pipeline)
    (examples,) = (tmp_path / "root" / "ImageExampleGen" / "examples").iterdir()
    return examples


def read_examples(examples: Path, split: str = "*") -> list[tuple[bytes, int]]:
    """(image, label) of one split, or of all (a single input split is hash-split 2:1)."""
    spec = {
        IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    }
    files = sorted(map(str, examples.glob(f"Split-{split}/*")))
    records = tf.data.TFRecordDataset(files, "GZIP")
    return [
        (parsed[IMAGE_KEY].numpy(), int(parsed[LABEL_KEY]))
        for parsed in (tf.io.parse_single_example(r, spec) for r in records)
    ]


def single_split(splits: list[str]) -> tfx.proto.Input:
    return tfx.proto.Input(
        splits=[tfx.proto.Input.Split(name=name, pattern=pattern) for name, pattern in splits]
    )


def test_class_folders_become_labelled_examples_and_bad_files_are_skipped(tmp_path):
    expected = class_tree(tmp_path / "images", bad=True)
    examples = run_example_gen(
        tmp_path,
        image_example_gen(
            str(tmp_path / "images"),
            input_config=single_split([("train", "*/*")]),
            max_bad_fraction=0.5,
        ),
    )
    records = read_examples(examples)
    labels = [label for _, label in records]
    assert {label: labels.count(label) for label in set(labels)} == expected
    for image, _ in records:
        assert tf.io.decode_image(image, expand_animations=False).shape[-1] in (1, 3)


def test_an_image_pillow_reads_but_tensorflow_cannot_decode_is_a_bad_file():
    pictures = {}
    for mode in ("1", "L", "RGB"):  # TensorFlow decodes no 1-bit BMP
        bmp = io.BytesIO()
        Image.new(mode, (28, 28)).save(bmp, format="BMP")
        pictures[mode] = image_problem(bmp.getvalue())
    assert pictures["L"] is None and pictures["RGB"] is None
    assert pictures["1"].startswith("TensorFlow cannot decode it: ")


def test_too_many_undecodable_images_fail_the_run_naming_them(tmp_path):
    class_tree(tmp_path / "images", bad=True)
    with pytest.raises(Exception, match="3 of 8 input files are not decodable") as raised:
        run_example_gen(
            tmp_path,
            image_example_gen(
                str(tmp_path / "images"), input_config=single_split([("train", "*/*")])
            ),
        )
    for name in ("truncated.png", "text.png", "zero.jpg"):
        assert name in str(raised.value)


def test_idx_files_gzipped_and_raw_become_png_examples(tmp_path):
    pixels, labels = load_sample(110, seed=4)
    (tmp_path / "idx").mkdir()
    write_idx(tmp_path / "idx" / "train-images-idx3-ubyte.gz", pixels[:100])
    write_idx(tmp_path / "idx" / "train-labels-idx1-ubyte.gz", labels[:100])
    write_idx(tmp_path / "idx" / "t10k-images-idx3-ubyte", pixels[100:])
    write_idx(tmp_path / "idx" / "t10k-labels-idx1-ubyte", labels[100:])
    examples = run_example_gen(
        tmp_path,
        image_example_gen(
            str(tmp_path / "idx"),
            input_config=single_split([("train", "train-*"), ("test", "t10k-*")]),
        ),
    )
    # t10k is the test split as it is; validation is carved out of train, nothing in both.
    train, validation = read_examples(examples, "train"), read_examples(examples, "validation")
    assert 0.05 < len(validation) / 100 < 0.2
    assert sorted(train + validation) == sorted(
        zip(map(encode_png, pixels[:100]), labels[:100].tolist(), strict=True)
    )
    test = read_examples(examples, "test")
    assert sorted(label for _, label in test) == sorted(labels[100:].tolist())
    assert sorted(image for image, _ in test) == sorted(map(encode_png, pixels[100:]))


def test_idx_files_whose_counts_disagree_are_refused(tmp_path):
    pixels, labels = load_sample(10, seed=4)
    write_idx(tmp_path / "train-images-idx3-ubyte", pixels)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels[:9])
    with pytest.raises(Exception, match="holds 10 images but .* 9 labels"):
        run_example_gen(
            tmp_path / "run",
            image_example_gen(str(tmp_path), input_config=single_split([("train", "train-*")])),
        )


def test_the_latest_span_is_ingested(tmp_path):
    for span, value in ((1, 50), (2, 200)):
        root = tmp_path / "data" / f"span-{span}"
        (root / "a").mkdir(parents=True)
        (root / "b").mkdir()
        (root / "a" / "x.png").write_bytes(encoded((28, 28), "L", "PNG", value))
        (root / "b" / "y.png").write_bytes(encoded((28, 28), "L", "PNG", value))
    examples = run_example_gen(
        tmp_path,
        image_example_gen(
            str(tmp_path / "data"), input_config=single_split([("train", "span-{SPAN}/*/*")])
        ),
    )
    images = [image for image, _ in read_examples(examples)]
    assert len(images) == 2
    assert all(np.asarray(Image.open(io.BytesIO(image))).max() == 200 for image in images)
    # Recorded where StatisticsGen and the span resolvers read it, not only as ExampleGen's
    # driver does (a custom property).
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(tmp_path / "metadata.sqlite")
        )
    )
    (artifact,) = store.get_artifacts_by_type(tfx.types.standard_artifacts.Examples.TYPE_NAME)
    assert artifact.properties["span"].int_value == 2
    assert artifact.custom_properties["span"].int_value == 2


def test_own_splits_share_class_ids_and_an_external_tfrecord_test_set_passes_through(tmp_path):
    pixels, labels = load_sample(40, seed=6)
    for split, names, count in (("train", ("cat", "dog"), 30), ("test", ("dog",), 1)):
        for name in names:  # the test split lacks "cat": "dog" must keep id 1 there
            folder = tmp_path / "data" / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                (folder / f"{index}.png").write_bytes(encode_png(pixels[index]))
    external = tmp_path / "external" / "digits.tfrecord.gz"
    external.parent.mkdir()
    with tf.io.TFRecordWriter(str(external), "GZIP") as writer:
        for image, label in zip(pixels, labels, strict=True):
            example = make_example(encode_png(image), int(label), str(label))
            writer.write(example.SerializeToString())

    def ingest(run: str, test_pattern: str) -> Path:
        return run_example_gen(
            tmp_path / run,
            image_example_gen(
                str(tmp_path / "data"),
                input_config=single_split([("train", "train/*/*"), ("test", test_pattern)]),
            ),
        )

    own = ingest("own", "test/*/*")
    train = read_examples(own, "train") + read_examples(own, "validation")
    assert sorted(label for _, label in train) == [0] * 30 + [1] * 30  # cat 0, dog 1
    assert [label for _, label in read_examples(own, "test")] == [1]
    with_external = ingest("external", str(external))  # an absolute pattern, as TEST_DATA's
    assert sorted(read_examples(with_external, "test")) == sorted(
        zip(map(encode_png, pixels), labels.tolist(), strict=True)
    )
