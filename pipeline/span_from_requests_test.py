"""Corrected requests become the next span, whole, in the raw format every span has."""

import pytest
import tensorflow as tf

from components.data.codecs import encode_png
from components.data.sample import load_sample
from pipeline import span_from_requests
from pipeline.data_source import DataSourceError
from pipeline.settings import Settings
from serving.corrections import Corrections
from trainer.features import CLASS_NAME_KEY, IMAGE_KEY, LABEL_KEY, MNIST_CLASS_NAMES


def test_corrections_become_the_next_span_and_are_not_taken_twice(tmp_path, monkeypatch):
    data, outputs = tmp_path / "data", tmp_path / "outputs"
    (data / "span-1").mkdir(parents=True)
    (data / "span-2.partial").mkdir()  # what a killed write left
    monkeypatch.setenv("OUTPUT_DIR", str(outputs))
    monkeypatch.setenv("DATA", str(data))
    log_dir = Settings.from_env().request_log_dir
    log_dir.mkdir(parents=True)
    pngs = [encode_png(p) for p in load_sample(2, seed=6)[0]]
    corrections = Corrections(log_dir)
    request_id = corrections.remember(3, "serving_image", pngs, ["1", "1"])
    corrections.correct(request_id, 1, "7", list(MNIST_CLASS_NAMES))
    corrections.correct(request_id, 0, "4", list(MNIST_CLASS_NAMES))

    assert span_from_requests.main() == 0
    assert sorted(p.name for p in data.iterdir()) == ["span-1", "span-2"]
    spec = {
        IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
        CLASS_NAME_KEY: tf.io.FixedLenFeature([], tf.string),
    }
    records = tf.data.TFRecordDataset(str(data / "span-2" / span_from_requests.SPAN_FILE))
    examples = [tf.io.parse_single_example(record, spec) for record in records]
    assert [(e[IMAGE_KEY].numpy(), int(e[LABEL_KEY])) for e in examples] == [
        (pngs[1], 7),
        (pngs[0], 4),
    ]
    assert (log_dir / "corrections-span-2.jsonl").exists()
    with pytest.raises(FileNotFoundError, match="No corrections in"):
        span_from_requests.main()  # each correction goes into one span only


def test_class_folder_spans_get_a_folder_per_class_and_other_layouts_are_refused(tmp_path):
    pngs = [encode_png(p) for p in load_sample(2, seed=6)[0]]
    corrections = Corrections(tmp_path)
    request_id = corrections.remember(3, "serving_image", pngs, ["1", "1"])
    written = [corrections.correct(request_id, i, "7", list(MNIST_CLASS_NAMES)) for i in (0, 1)]
    for name in ("3", "7"):
        (tmp_path / "folders" / "span-1" / name).mkdir(parents=True)
    span = span_from_requests.write_span(tmp_path / "folders", written)
    assert not any((span / "3").iterdir())  # kept, so that "7" keeps its label id
    assert sorted(p.name for p in (span / "7").iterdir()) == [
        f"{request_id}-0.png",
        f"{request_id}-1.png",
    ]
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataSourceError, match="move the data into span-1/ first"):
        span_from_requests.write_span(tmp_path / "flat", written)
    for split in ("train", "test"):
        (tmp_path / "splits" / "span-1" / split).mkdir(parents=True)
    with pytest.raises(DataSourceError, match="IDX files or split folders"):
        span_from_requests.write_span(tmp_path / "splits", written)
