"""Which files ExampleGen reads for each DATA layout, and which schema checks them."""

import pytest

from components.idx import write_idx
from components.mnist_sample import encode_png, load_sample
from pipeline import configs, data_source


@pytest.fixture(scope="module")
def digits():
    return load_sample(20, seed=5)


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


def test_class_folders_are_hash_split_and_their_schema_inferred(tmp_path, digits):
    class_folders(tmp_path, digits)
    source = data_source.resolve(str(tmp_path))
    assert (source.kind, source.splits, source.schema) == ("images", {"all": "*/*"}, None)


def test_span_folders_give_span_patterns_laid_out_like_the_newest(tmp_path, digits):
    class_folders(tmp_path / "span-1", digits)
    official_idx(tmp_path / "span-12", digits)  # the newest decides: IDX, official names
    source = data_source.resolve(str(tmp_path))
    assert source.root == tmp_path and source.spans == (1, 12)
    assert source.splits == {"train": "span-{SPAN}/train-*", "eval": "span-{SPAN}/t10k-*"}
    assert source.schema == configs.MNIST_SCHEMA  # digits: the reviewed schema


def test_class_folders_in_spans(tmp_path, digits):
    class_folders(tmp_path / "span-1", digits)
    class_folders(tmp_path / "span-2", digits)
    assert data_source.resolve(str(tmp_path)).splits == {"all": "span-{SPAN}/*/*"}


def test_schema_setting_overrides_the_default(tmp_path, digits, monkeypatch):
    official_idx(tmp_path / "idx", digits)
    monkeypatch.setattr(configs, "SCHEMA", "infer")
    assert data_source.resolve(str(tmp_path / "idx")).schema is None
    reviewed = tmp_path / "reviewed.pbtxt"
    reviewed.write_text(configs.MNIST_SCHEMA.read_text())
    monkeypatch.setattr(configs, "SCHEMA", str(reviewed))
    assert data_source.resolve(str(tmp_path / "idx")).schema == reviewed
    monkeypatch.setattr(configs, "SCHEMA", str(tmp_path / "missing.pbtxt"))
    with pytest.raises(FileNotFoundError, match="missing.pbtxt"):
        data_source.resolve(str(tmp_path / "idx"))


def test_empty_newest_span_is_named(tmp_path, digits):
    class_folders(tmp_path / "span-1", digits)
    (tmp_path / "span-2").mkdir()
    with pytest.raises(FileNotFoundError, match="span-2 is empty"):
        data_source.resolve(str(tmp_path))
