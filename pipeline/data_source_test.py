"""Which files ExampleGen reads for each DATA layout, and which schema checks them."""

import dataclasses

import pytest
import tensorflow as tf

from components.data.codecs import encode_png, write_idx
from components.data.sample import load_sample, make_example
from pipeline import data_source
from pipeline.data_source import DataSourceError
from pipeline.settings import MNIST_SCHEMA, Gates, Settings


@pytest.fixture(scope="module")
def digits():
    return load_sample(100, seed=5)  # every class, at least 3 of each


def resolve(
    data: str, test_data: str = "", schema: str = "", min_class_examples: int = 1
) -> data_source.DataSource:
    gates = Gates(min_class_examples=min_class_examples)
    return data_source.resolve(Settings(data=data, test_data=test_data, schema=schema, gates=gates))


def class_folders(root, digits) -> None:
    pixels, labels = digits
    for index, (image, label) in enumerate(zip(pixels, labels, strict=True)):
        folder = root / f"class-{label}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index}.png").write_bytes(encode_png(image))


def official_idx(root, digits) -> None:
    root.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        write_idx(root / f"{prefix}-images-idx3-ubyte", digits[0])
        write_idx(root / f"{prefix}-labels-idx1-ubyte", digits[1])


def test_a_sample_whose_writing_was_killed_is_written_again(tmp_path):
    settings = Settings(output_dir=tmp_path, sample_size=50)
    settings.default_sample_root.mkdir(parents=True)
    (settings.default_sample_root / ".mnist_sample.tfrecord.99.partial").write_bytes(b"half")
    source = data_source.resolve(dataclasses.replace(settings, gates=Gates(min_class_examples=1)))
    written = source.root / "mnist_sample.tfrecord"
    assert sum(1 for _ in tf.data.TFRecordDataset(str(written))) == 50
    assert [path.name for path in source.root.iterdir()] == [written.name]


def test_class_folders_are_hash_split_and_their_schema_inferred(tmp_path, digits):
    class_folders(tmp_path, digits)
    source = resolve(str(tmp_path))
    assert (source.kind, source.splits, source.schema) == ("images", {"all": "*/*"}, None)


def test_span_folders_give_span_patterns_laid_out_like_the_newest(tmp_path, digits):
    class_folders(tmp_path / "span-1", digits)
    official_idx(tmp_path / "span-12", digits)  # the newest decides: IDX, official names
    source = resolve(str(tmp_path))
    assert source.root == tmp_path and source.spans == (1, 12)
    assert source.splits == {"train": "span-{SPAN}/train-*", "test": "span-{SPAN}/t10k-*"}
    assert source.schema == MNIST_SCHEMA  # digits: the reviewed schema


def test_a_span_still_being_written_under_another_name_is_not_a_span(tmp_path, digits):
    class_folders(tmp_path / "span-1", digits)
    class_folders(tmp_path / "span-2.partial", digits)  # renamed to span-2 once complete
    assert resolve(str(tmp_path)).spans == (1,)


def test_class_folders_in_spans(tmp_path, digits):
    class_folders(tmp_path / "span-1", digits)
    class_folders(tmp_path / "span-2", digits)
    assert resolve(str(tmp_path)).splits == {"all": "span-{SPAN}/*/*"}


def test_schema_setting_overrides_the_default(tmp_path, digits):
    official_idx(tmp_path / "idx", digits)
    assert resolve(str(tmp_path / "idx"), schema="infer").schema is None
    reviewed = tmp_path / "reviewed.pbtxt"
    reviewed.write_text(MNIST_SCHEMA.read_text())
    assert resolve(str(tmp_path / "idx"), schema=str(reviewed)).schema == reviewed
    with pytest.raises(FileNotFoundError, match="missing.pbtxt"):
        resolve(str(tmp_path / "idx"), schema=str(tmp_path / "missing.pbtxt"))


def test_empty_newest_span_is_named(tmp_path, digits):
    class_folders(tmp_path / "span-1", digits)
    (tmp_path / "span-2").mkdir()
    with pytest.raises(FileNotFoundError, match="span-2 is empty"):
        resolve(str(tmp_path))


def test_class_folders_with_their_own_splits_keep_them(tmp_path, digits):
    for split in ("train", "val", "test"):
        class_folders(tmp_path / split, digits)
    assert resolve(str(tmp_path)).splits == {
        "train": "train/*/*",
        "validation": "val/*/*",
        "test": "test/*/*",
    }
    (tmp_path / "val").rename(tmp_path / "other")  # no validation: carved out of train
    assert resolve(str(tmp_path)).splits == {"train": "train/*/*", "test": "test/*/*"}


def write_tfrecords(path, digits, class_name=None) -> None:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for image, label in zip(*digits, strict=True):
            name = class_name or str(label)
            writer.write(make_example(encode_png(image), int(label), name).SerializeToString())


def test_test_data_replaces_the_test_split_in_any_layout(tmp_path, digits):
    official_idx(tmp_path / "data", digits)
    official_idx(tmp_path / "dev", digits)
    class_folders(tmp_path / "tree", digits)
    (tmp_path / "records").mkdir()
    write_tfrecords(tmp_path / "records" / "part.tfrecord", digits)
    data = str(tmp_path / "data")
    for test_data, pattern in (
        ("dev", "dev/*"),
        ("records", "records/*tfrecord*"),
        ("records/part.tfrecord", "records/part.tfrecord"),
    ):
        source = resolve(data, str(tmp_path / test_data))
        assert source.kind == "images"
        assert source.splits == {"train": "train-*", "test": str(tmp_path / pattern)}
    # Data in one piece: everything trains (validation carved out), TEST_DATA tests.
    class_folders(tmp_path / "digit-folders", (digits[0], digits[1]))
    for folder in (tmp_path / "digit-folders").iterdir():
        folder.rename(folder.with_name(folder.name.removeprefix("class-")))
    source = resolve(str(tmp_path / "digit-folders"), str(tmp_path / "dev"))
    assert source.splits == {"train": "*/*", "test": f"{tmp_path}/dev/*"}


def test_unusable_test_data_is_named_before_any_component_runs(tmp_path, digits):
    official_idx(tmp_path / "data", digits)
    data = str(tmp_path / "data")
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("no data here")
    for test_data, message in (
        ("missing", "does not exist"),
        ("empty", "is empty"),
        ("junk", "holds no IDX files"),
    ):
        with pytest.raises(DataSourceError, match=f"{tmp_path / test_data}.*{message}"):
            resolve(data, str(tmp_path / test_data))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "t10k-images-idx3-ubyte").write_bytes(b"\0\0\x08\x03")
    (tmp_path / "broken" / "t10k-labels-idx1-ubyte").write_bytes(b"not idx")
    with pytest.raises(DataSourceError, match="t10k-images-idx3-ubyte ends inside its IDX"):
        resolve(data, str(tmp_path / "broken"))
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "bad.tfrecord").write_bytes(b"not a tfrecord file at all")
    with pytest.raises(DataSourceError, match="cannot read .*bad.tfrecord"):
        resolve(data, str(tmp_path / "records"))


def test_test_data_with_classes_the_training_data_lacks_is_refused(tmp_path, digits):
    class_folders(tmp_path / "data", digits)  # classes class-0 .. class-9
    (tmp_path / "records").mkdir()
    write_tfrecords(tmp_path / "records" / "a.tfrecord", digits, class_name="zebra")
    with pytest.raises(DataSourceError, match="lacks: zebra"):
        resolve(str(tmp_path / "data"), str(tmp_path / "records"))
    official_idx(tmp_path / "dev", digits)
    with pytest.raises(DataSourceError, match="lacks: 0, 1"):
        resolve(str(tmp_path / "data"), str(tmp_path / "dev"))


def test_test_data_with_spans_is_refused(tmp_path, digits):
    class_folders(tmp_path / "span-1", digits)
    official_idx(tmp_path / "dev", digits)
    with pytest.raises(DataSourceError, match="span folders"):
        resolve(str(tmp_path), str(tmp_path / "dev"))


def test_class_folders_that_would_fail_training_are_refused(tmp_path, digits):
    class_folders(tmp_path, digits)
    (tmp_path / "class-empty").mkdir()  # would take a label id no example carries
    with pytest.raises(DataSourceError, match="class-empty in .* holds no training images"):
        resolve(str(tmp_path))
    (tmp_path / "class-empty").rmdir()
    with pytest.raises(DataSourceError, match=r"'class-4' has 3.*at least 4 \(MIN_CLASS_"):
        resolve(str(tmp_path), min_class_examples=4)
    for split in ("train", "test"):  # a class with test images only cannot be learned
        class_folders(tmp_path / "split" / split, digits)
    for image in (tmp_path / "split" / "train" / "class-7").iterdir():
        image.unlink()
    with pytest.raises(DataSourceError, match="class-7 in .* holds no training images"):
        resolve(str(tmp_path / "split"))


def test_idx_files_cut_short_or_inconsistent_are_named(tmp_path, digits):
    official_idx(tmp_path / "idx", digits)
    images = tmp_path / "idx" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-100])  # the header announces more
    with pytest.raises(
        DataSourceError, match="train-images-idx3-ubyte holds 78300 values, its header announces"
    ):
        resolve(str(tmp_path / "idx"))
    write_idx(images, digits[0][:99])
    with pytest.raises(DataSourceError, match="holds 99 images but .*train-labels.* 100 labels"):
        resolve(str(tmp_path / "idx"))
    write_idx(images, digits[0][digits[1] != 4])
    write_idx(tmp_path / "idx" / "train-labels-idx1-ubyte", digits[1][digits[1] != 4])
    with pytest.raises(DataSourceError, match="no training example has label 4; .* 0 .. 9"):
        resolve(str(tmp_path / "idx"))
    (tmp_path / "gz").mkdir()
    gz = tmp_path / "gz" / "all-images-idx3-ubyte.gz"
    write_idx(gz, digits[0])
    write_idx(tmp_path / "gz" / "all-labels-idx1-ubyte.gz", digits[1])
    gz.write_bytes(gz.read_bytes()[:-500])
    with pytest.raises(DataSourceError, match="cannot read .*all-images-idx3-ubyte.gz: Compr"):
        resolve(str(tmp_path / "gz"))


def test_tfrecords_cut_short_or_corrupt_are_named_with_the_offset(tmp_path, digits):
    records = tmp_path / "records" / "digits.tfrecord"
    records.parent.mkdir()
    write_tfrecords(records, digits)
    whole = records.read_bytes()
    records.write_bytes(whole[:-100])
    with pytest.raises(DataSourceError, match=r"digits.tfrecord: truncated record at byte \d+$"):
        resolve("mnist-sample", str(records))
    records.write_bytes(whole[:5000] + bytes([whole[5000] ^ 0xFF]) + whole[5001:])
    with pytest.raises(DataSourceError, match=r"digits.tfrecord: corrupted record at byte \d+$"):
        resolve("mnist-sample", str(records))


def test_the_check_counts_every_span_the_trainer_reads(tmp_path, digits):
    """A span of corrections holds a few classes: fine when TRAIN_SPANS reads the ones before."""
    class_folders(tmp_path / "span-1", digits)
    class_folders(tmp_path / "span-2", digits)
    for folder in (tmp_path / "span-2").iterdir():
        if folder.name != "class-7":
            for image in folder.iterdir():
                image.unlink()
    with pytest.raises(DataSourceError, match=r"class-0, class-1, .* in .*span-2 hold no"):
        resolve(str(tmp_path))
    settings = Settings(data=str(tmp_path), train_spans=2, gates=Gates(min_class_examples=1))
    assert data_source.resolve(settings).spans == (1, 2)
    with pytest.raises(DataSourceError, match=r"\(span-1 to span-2\): too few .*'class-4' has 3"):
        data_source.resolve(dataclasses.replace(settings, gates=Gates(min_class_examples=4)))
