"""Request logging, which open-source TF Serving cannot do (its server supplies no request
logger: tensorflow/serving issues 408 and 1846): each answered Predict, sampled, as TF
Serving's own `PredictionLog` record (the request with its model spec and version, the response,
the time), in TFRecord files: the format TFX's BulkInferrer writes and tfx_bsl reads.

A request only draws its sample and hands the record to a bounded queue; a thread of its own
builds and writes the records, in batches (one flush each). A full queue, a full disk or a
failed write drops records and counts them (Prometheus), and never fails or slows a request;
the queue holds at most `queue_bytes` of requests. Files rotate at `file_bytes` or
`file_seconds`; each is written under a hidden partial name and renamed when complete, so that
readers see whole files only; past `max_bytes` the oldest files are deleted.

    <directory>/requests-<first request's UTC time>-<process id>-<sequence>.tfrecord
"""

import contextlib
import dataclasses
import itertools
import logging
import os
import queue
import random
import struct
import threading
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import prediction_log_pb2

from components.child_process import running
from serving.metrics import Metrics

log = logging.getLogger(__name__)

LOG_SUFFIX = ".tfrecord"
# What became of each request, in `:tensorflow:serving:request_log_count{status=...}`: dropped
# is a full queue or a log already closed; failed is a record that could not be written.
WRITTEN, SAMPLED_OUT, DROPPED, WRITE_FAILED = "written", "sampled_out", "dropped", "failed"
# A queued record's cost beyond its tensors' bytes (Python objects), per record and per value.
ENTRY_OVERHEAD, VALUE_OVERHEAD = 512, 64


@dataclasses.dataclass(frozen=True)
class RequestLogSettings:
    """Defaults: every request, files of at most 64 MB or a minute, 1 GB in all (about 700,000
    batch-1 requests of PNG digits)."""

    sample_rate: float = 1.0
    max_bytes: int = 1024**3
    file_bytes: int = 64 * 1024**2
    file_seconds: float = 60.0
    queue_bytes: int = 256 * 1024**2  # requests waiting to be written; more are dropped
    batch_seconds: float = 0.2  # how long requests gather before they are written together


@dataclasses.dataclass
class _Entry:
    version: int
    signature_name: str
    inputs: dict[str, list[bytes]]
    outputs: dict[str, np.ndarray]
    seconds: int
    size: int  # what it holds in memory, roughly


def tensor_proto(values: np.ndarray | list[bytes]) -> tensor_pb2.TensorProto:
    """A TensorProto as tf.make_tensor_proto writes it, built by protobuf alone: make_tensor_proto
    costs about 10 times as much, on a thread that shares the interpreter with the requests."""
    array = np.asarray(values) if isinstance(values, np.ndarray) else None
    shape = array.shape if array is not None else (len(values),)
    if array is None or array.dtype.kind in "OSU":
        tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING)
        tensor.string_val.extend(values if array is None else array.ravel().tolist())
    else:
        tensor = tensor_pb2.TensorProto(
            dtype=tf.dtypes.as_dtype(array.dtype).as_datatype_enum,
            tensor_content=np.ascontiguousarray(array).tobytes(),
        )
    for size in shape:
        tensor.tensor_shape.dim.add(size=size)
    return tensor


def prediction_log(model_name: str, entry: _Entry) -> prediction_log_pb2.PredictionLog:
    """TF Serving's record of one Predict: metadata, request and response."""
    record = prediction_log_pb2.PredictionLog()
    record.log_metadata.model_spec.name = model_name
    record.log_metadata.model_spec.version.value = entry.version
    record.log_metadata.model_spec.signature_name = entry.signature_name
    record.log_metadata.timestamp_secs = entry.seconds
    request, response = record.predict_log.request, record.predict_log.response
    request.model_spec.CopyFrom(record.log_metadata.model_spec)
    for name, values in entry.inputs.items():
        request.inputs[name].CopyFrom(tensor_proto(values))
    response.model_spec.CopyFrom(record.log_metadata.model_spec)
    for name, value in entry.outputs.items():
        response.outputs[name].CopyFrom(tensor_proto(value))
    return record


class RequestLog:
    """Writes sampled Predict requests of one model to `directory`; `close` finishes the file
    being written."""

    def __init__(
        self, directory: Path, model_name: str, settings: RequestLogSettings, metrics: Metrics
    ):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.model_name = model_name
        self.settings = settings
        self.metrics = metrics
        self._queue: queue.Queue[_Entry | None] = queue.Queue()
        self._lock = threading.Lock()
        self._queued_bytes = 0
        self._closed = False
        self._finish_stale_files()
        self._sequence = itertools.count()
        self._thread = threading.Thread(target=self._write_all, daemon=True, name="request-log")
        self._thread.start()

    def record(
        self,
        version: int,
        signature_name: str,
        inputs: dict[str, list[bytes]],
        outputs: dict[str, np.ndarray],
    ) -> None:
        """On the request path: a draw and a queue put, nothing that can block or fail."""
        if random.random() >= self.settings.sample_rate:
            self.metrics.record_logged(self.model_name, SAMPLED_OUT)
            return
        size = ENTRY_OVERHEAD + sum(
            len(value) + VALUE_OVERHEAD for values in inputs.values() for value in values
        )
        size += sum(array.nbytes for array in outputs.values())
        with self._lock:
            if self._closed or self._queued_bytes + size > self.settings.queue_bytes:
                self.metrics.record_logged(self.model_name, DROPPED)
                return
            self._queued_bytes += size
        self._queue.put(_Entry(version, signature_name, inputs, outputs, int(time.time()), size))

    def close(self) -> None:
        """Writes what is queued and finishes the file."""
        with self._lock:
            self._closed = True
        self._queue.put(None)
        self._thread.join()

    def _finish_stale_files(self) -> None:
        """Files that a killed server left partial: cut after their last whole record (each
        was flushed) and renamed into place."""
        for partial in self.directory.glob(f".requests-*{LOG_SUFFIX}.partial"):
            pid = partial.name.split("-")[2]
            if pid.isdigit() and int(pid) != os.getpid() and not running(int(pid)):
                os.truncate(partial, whole_records_bytes(partial))
                os.replace(partial, partial.with_name(partial.name[1 : -len(".partial")]))

    def _write_all(self) -> None:
        file = None
        while True:
            try:
                first = self._queue.get(timeout=file.seconds_left() if file else None)
            except queue.Empty:  # the file's time is up
                self._finish(file)
                file = None
                continue
            if first is not None:
                # Requests gather meanwhile: this thread then takes the interpreter from the
                # requests once per batch, not once per request, and flushes once.
                time.sleep(self.settings.batch_seconds)
            for entry in [first, *self._waiting()]:
                if entry is None:
                    self._finish(file)
                    return
                file = self._write(file, entry)
            if file is not None and not self._commit(file):
                self._finish(file)
                file = None

    def _waiting(self) -> list[_Entry | None]:
        entries = []
        with contextlib.suppress(queue.Empty):
            while True:
                entries.append(self._queue.get_nowait())
        return entries

    def _write(self, file: "_LogFile | None", entry: _Entry) -> "_LogFile | None":
        """Writes one record (unflushed); returns the file to write the next to."""
        with self._lock:
            self._queued_bytes -= entry.size
        if file is not None and (file.full() or not file.seconds_left()):
            self._finish(file)
            file = None
        try:
            record = prediction_log(self.model_name, entry).SerializeToString()
        except Exception as error:  # noqa: BLE001 (outputs no TensorProto holds)
            log.warning("Request log: could not record a request: %s", error)
            self.metrics.record_logged(self.model_name, WRITE_FAILED)
            return file
        try:
            file = file or _LogFile(self._new_path(), self.settings)
            file.write(record)
        except Exception as error:  # noqa: BLE001 (a full disk: count it, keep serving)
            log.warning("Request log: could not write to %s: %s", self.directory, error)
            self.metrics.record_logged(self.model_name, WRITE_FAILED)
            self._finish(file)  # keeps the records written before
            return None
        return file

    def _commit(self, file: "_LogFile") -> bool:
        """Flushes the file's new records and counts them; False where the disk refused some
        (a full disk: counted, and serving goes on)."""
        try:
            whole, lost = file.flush()
        except OSError as error:  # the file is gone
            log.warning("Request log: could not write to %s: %s", file.partial, error)
            self.metrics.record_logged(self.model_name, WRITE_FAILED, len(file.ends))
            file.broken = True
            return False
        self.metrics.record_logged(self.model_name, WRITTEN, whole)
        self.metrics.record_logged(self.model_name, WRITE_FAILED, lost)
        if file.broken:
            log.warning("Request log: %s took only part of the records; closed", file.partial)
        return not file.broken

    def _new_path(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        name = f"requests-{stamp}-{os.getpid()}-{next(self._sequence):06d}{LOG_SUFFIX}"
        return self.directory / name

    def _finish(self, file: "_LogFile | None") -> None:
        if file is None:
            return
        self._commit(file)
        try:
            file.close()
            self._keep_within_budget()
        except Exception as error:  # noqa: BLE001
            log.warning("Request log: could not finish %s: %s", file.path, error)

    def _keep_within_budget(self) -> None:
        stats = {}
        for path in log_files(self.directory):
            with contextlib.suppress(FileNotFoundError):
                stats[path] = path.stat()
        total = sum(stat.st_size for stat in stats.values())
        for oldest in sorted(stats, key=lambda path: stats[path].st_mtime):
            if total <= self.settings.max_bytes:
                break
            total -= stats[oldest].st_size
            oldest.unlink(missing_ok=True)


def whole_records_bytes(path: Path) -> int:
    """How many bytes of a TFRecord file hold whole records (each: an 8-byte length, a 4-byte
    checksum, the data, a 4-byte checksum)."""
    size, at = path.stat().st_size, 0
    with open(path, "rb") as file:
        while at + 12 <= size:
            file.seek(at)
            (length,) = struct.unpack("<Q", file.read(8))
            if at + 16 + length > size:
                break
            at += 16 + length
    return at


class _LogFile:
    """One TFRecord file being written under a hidden partial name."""

    def __init__(self, path: Path, settings: RequestLogSettings):
        self.path = path
        self.partial = path.with_name(f".{path.name}.partial")
        self.writer = tf.io.TFRecordWriter(str(self.partial))
        self.deadline = time.monotonic() + settings.file_seconds
        self.max_bytes = settings.file_bytes
        self.bytes = self.good_bytes = 0
        self.ends: list[int] = []  # where the records written since the last flush end
        self.broken = False

    def write(self, record: bytes) -> None:
        self.writer.write(record)
        self.bytes += len(record) + 16  # TFRecord's length and checksums
        self.ends.append(self.bytes)

    def flush(self) -> tuple[int, int]:
        """(records now whole on disk, records lost). A full disk takes part of what was
        written, with or without an error; the records past it are lost, and the file is
        `broken`: it takes no more (a later record would follow a cut one)."""
        try:
            self.writer.flush()
        except Exception:  # noqa: BLE001 (counted below, from what reached the disk)
            self.broken = True
        on_disk = self.partial.stat().st_size
        whole = sum(1 for end in self.ends if end <= on_disk)
        if whole:
            self.good_bytes = self.ends[whole - 1]  # the file holds whole records up to here
        lost = len(self.ends) - whole
        self.broken = self.broken or bool(lost)
        self.ends = []
        return whole, lost

    def seconds_left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def full(self) -> bool:
        return self.bytes >= self.max_bytes

    def close(self) -> None:
        """Renames the file into place with its whole records (none: removes it); a record cut
        by a failed write is cut off."""
        with contextlib.suppress(Exception):  # a full disk fails the close too
            self.writer.close()
        if self.good_bytes:
            os.truncate(self.partial, self.good_bytes)
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)


def log_files(directory: Path) -> list[Path]:
    """The complete request log files in `directory`, oldest name first."""
    return sorted(directory.glob(f"requests-*{LOG_SUFFIX}"))
