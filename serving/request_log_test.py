"""The request log: TF Serving's PredictionLog records in TFRecord files, sampled, rotated,
within a disk budget, and never an error for a request."""

import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from prometheus_client.parser import text_string_to_metric_families
from tensorflow_serving.apis import prediction_log_pb2

from serving.metrics import REQUEST_LOG_COUNT, Metrics
from serving.request_log import (
    DROPPED,
    SAMPLED_OUT,
    WRITE_FAILED,
    WRITTEN,
    RequestLog,
    RequestLogSettings,
    log_files,
    tensor_proto,
)

OUTPUTS = {"class_ids": np.array([7], np.int64), "probabilities": np.full((1, 10), 0.1, np.float32)}


def records(directory) -> list[prediction_log_pb2.PredictionLog]:
    files = [str(path) for path in log_files(directory)]
    return [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(files)
    ]


def logged(metrics: Metrics) -> dict[str, int]:
    """The request log's counts by status, as the metrics endpoint shows them."""
    families = {f.name: f for f in text_string_to_metric_families(metrics.text())}
    samples = families[REQUEST_LOG_COUNT.removesuffix("_total")].samples
    return {s.labels["status"]: int(s.value) for s in samples if s.name.endswith("_total")}


def write(directory, count: int, **settings) -> Metrics:
    metrics = Metrics()
    request_log = RequestLog(directory, "mnist_cnn", RequestLogSettings(**settings), metrics)
    for index in range(count):
        request_log.record(3, "serving_image", {"images": [b"png %d" % index]}, OUTPUTS)
    request_log.close()
    return metrics


def test_each_request_is_a_prediction_log_with_its_model_version_request_and_response(tmp_path):
    metrics = write(tmp_path, 5)
    found = records(tmp_path)
    assert len(found) == 5 and logged(metrics) == {WRITTEN: 5}
    first = found[0]
    spec = first.log_metadata.model_spec
    assert (spec.name, spec.version.value, spec.signature_name) == ("mnist_cnn", 3, "serving_image")
    assert abs(first.log_metadata.timestamp_secs - time.time()) < 60
    request, response = first.predict_log.request, first.predict_log.response
    assert request.model_spec == spec and request.inputs["images"].string_val == [b"png 0"]
    assert tf.make_ndarray(response.outputs["class_ids"]).tolist() == [7]
    assert [p.name for p in tmp_path.iterdir()] == [p.name for p in log_files(tmp_path)]


@pytest.mark.parametrize(
    "values",
    [
        [b"png", b"\x00\xff"],
        np.array([[0.25, 0.75]], np.float32),
        np.array([3, 7], np.int64),
        np.array([b"seven", b"three"], object),
    ],
    ids=["input strings", "probabilities", "class ids", "class names"],
)
def test_tensors_are_those_make_tensor_proto_writes(values):
    assert tensor_proto(values) == tf.make_tensor_proto(values)


def test_files_rotate_by_size_and_the_oldest_go_past_the_budget(tmp_path):
    write(tmp_path, 40, file_bytes=1000, max_bytes=3000)
    files = log_files(tmp_path)
    assert len(files) >= 2 and sum(p.stat().st_size for p in files) <= 3000
    kept = records(tmp_path)
    assert kept and kept[-1].predict_log.request.inputs["images"].string_val == [b"png 39"]


def test_a_file_is_finished_when_its_time_is_up_without_further_requests(tmp_path):
    metrics = Metrics()
    settings = RequestLogSettings(file_seconds=0.2)
    request_log = RequestLog(tmp_path, "mnist_cnn", settings, metrics)
    request_log.record(1, "serving_default", {"examples": [b"x"]}, OUTPUTS)
    deadline = time.monotonic() + 30
    while not log_files(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(records(tmp_path)) == 1  # readable before the server stops
    request_log.close()


def test_a_file_is_finished_when_its_time_is_up_between_requests(tmp_path):
    write(tmp_path, 5, file_seconds=0.0)
    assert len(log_files(tmp_path)) == 5


def test_a_write_cut_by_a_full_file_system_keeps_every_whole_record(tmp_path):
    """A file size limit (RLIMIT_FSIZE) makes real writes fail partway, as a full disk does."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (2500, hard))
    try:
        metrics = write(tmp_path, 20)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    counts = logged(metrics)
    assert counts[WRITTEN] + counts[WRITE_FAILED] == 20 and counts[WRITE_FAILED] >= 1
    assert len(records(tmp_path)) == counts[WRITTEN]  # every file reads to its end


def test_a_record_that_cannot_be_built_is_counted_and_the_file_kept(tmp_path):
    metrics = Metrics()
    request_log = RequestLog(tmp_path, "mnist_cnn", RequestLogSettings(), metrics)
    request_log.record(1, "serving_image", {"images": [b"a"]}, OUTPUTS)
    request_log.record(1, "serving_image", {"images": [b"b"]}, {"odd": np.array([object()])})
    request_log.record(1, "serving_image", {"images": [b"c"]}, OUTPUTS)
    request_log.close()
    assert logged(metrics) == {WRITTEN: 2, WRITE_FAILED: 1}
    assert [r.predict_log.request.inputs["images"].string_val[0] for r in records(tmp_path)] == [
        b"a",
        b"c",
    ]


def test_a_file_a_killed_server_left_partial_is_cut_after_its_last_whole_record(tmp_path):
    write(tmp_path / "first", 3)
    (whole,) = log_files(tmp_path / "first")
    ended = subprocess.Popen([sys.executable, "-c", ""])
    ended.wait()
    partial = tmp_path / f".requests-20261202T000000Z-{ended.pid}-000000.tfrecord.partial"
    partial.write_bytes(whole.read_bytes()[:-5])  # the last record cut by the kill
    RequestLog(tmp_path, "mnist_cnn", RequestLogSettings(), Metrics()).close()
    assert [p.name for p in log_files(tmp_path)] == [partial.name[1 : -len(".partial")]]
    assert len(records(tmp_path)) == 2


@pytest.mark.parametrize(
    ("settings", "status"),
    [({"sample_rate": 0.0}, SAMPLED_OUT), ({"queue_bytes": 3}, DROPPED)],
)
def test_requests_not_logged_are_counted(tmp_path, settings, status):
    metrics = write(tmp_path, 4, **settings)
    assert logged(metrics) == {status: 4} and records(tmp_path) == []


def test_a_failing_disk_fails_no_request_and_is_counted(tmp_path):
    metrics = Metrics()
    directory = tmp_path / "logs"
    request_log = RequestLog(directory, "mnist_cnn", RequestLogSettings(), metrics)
    directory.rmdir()
    directory.write_text("not a folder any more")  # every file creation now fails
    for _ in range(3):
        request_log.record(1, "serving_image", {"images": [b"png"]}, OUTPUTS)  # no error
    request_log.close()
    assert logged(metrics) == {WRITE_FAILED: 3}
