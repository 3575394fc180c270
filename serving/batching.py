"""Server-side batching, as TF Serving's `--enable_batching` does: concurrent requests for the
same version and signature wait up to `batch_timeout_micros` to run together, up to
`max_batch_size` pictures in one call, on `num_batch_threads` threads; one call of 32 pictures
costs far less than 32 calls of one. A request larger than a batch runs alone. When a batch
fails (an undecodable picture), its requests run one by one, so that only the bad one fails.
Past `max_enqueued_batches` full batches waiting, a request is refused as TF Serving refuses it.

`--batching_parameters_file` is TF Serving's text-format `BatchingParameters`
(serving/batching_parameters.txt).
"""

import dataclasses
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


class BatchQueueFull(Exception):
    """TF Serving's UNAVAILABLE: the batch scheduling queue is full."""


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    max_batch_size: int = 32
    batch_timeout_micros: int = 1000
    num_batch_threads: int = 2
    max_enqueued_batches: int = 100


# Fields TF Serving takes that change nothing here: inputs are strings, never padded.
IGNORED_FIELDS = {"pad_variable_length_inputs", "allowed_batch_sizes", "thread_pool_name"}


def read_batching_parameters(path: Path) -> BatchingParameters:
    """TF Serving's text format (`max_batch_size { value: 64 }`); an unknown field or a value
    that is no number is refused naming its line."""
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        found = re.fullmatch(r"(\w+)\s*(?:\{\s*value:\s*(\S+)\s*\}|:\s*(\S+))", line)
        name = found[1] if found else None
        if name in IGNORED_FIELDS:
            continue
        if not found or name not in BatchingParameters.__dataclass_fields__:
            raise ValueError(f"{path}:{number}: not a batching parameter: {line!r}")
        try:
            values[name] = int(found[2] or found[3])
        except ValueError:
            raise ValueError(f"{path}:{number}: {name} must be a whole number") from None
    return BatchingParameters(**values)


@dataclasses.dataclass
class _Task:
    inputs: dict[str, list[bytes]]
    size: int
    arrived: float
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    outputs: dict[str, np.ndarray] | None = None
    error: BaseException | None = None


Run = Callable[[dict[str, list[bytes]]], dict[str, np.ndarray]]


class Batcher:
    """One queue per (version, signature); `run` blocks until its request's outputs are back."""

    def __init__(self, parameters: BatchingParameters):
        self.parameters = parameters
        self._queues: dict[tuple, list[_Task]] = {}
        self._runs: dict[tuple, Run] = {}
        self._ready = threading.Condition()
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._work, daemon=True, name=f"batch-{i}")
            for i in range(parameters.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def run(self, key: tuple, run: Run, inputs: dict[str, list[bytes]]) -> dict[str, np.ndarray]:
        size = len(next(iter(inputs.values())))
        if size >= self.parameters.max_batch_size:
            return run(inputs)
        task = _Task(inputs, size, time.monotonic())
        limit = self.parameters.max_enqueued_batches * self.parameters.max_batch_size
        with self._ready:
            queue = self._queues.setdefault(key, [])
            waiting = sum(t.size for t in queue) + size  # with this request's pictures
            if waiting > limit:
                raise BatchQueueFull(
                    "The batch scheduling queue to which this task was submitted is full"
                )
            queue.append(task)
            self._runs[key] = run
            # A batch thread needs waking only to start a batch's timeout or to take a full
            # batch; in between, its wait for the timeout stands (a wake-up per request cost
            # the Python work of a request again).
            if len(queue) == 1 or waiting >= self.parameters.max_batch_size:
                self._ready.notify()
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    def stop(self) -> None:
        """Refuses what still waits; the threads end."""
        with self._ready:
            self._stopped = True
            for queue in self._queues.values():
                for task in queue:
                    task.error = BatchQueueFull("The server is stopping")
                    task.done.set()
                queue.clear()
            self._ready.notify_all()

    def _take(self) -> tuple[Run, list[_Task]] | None:
        """The next batch that is full or whose oldest request waited out the timeout."""
        timeout = self.parameters.batch_timeout_micros / 1e6
        with self._ready:
            while not self._stopped:
                now, wait = time.monotonic(), None  # None: until a request arrives
                for key, queue in self._queues.items():
                    if not queue:
                        continue
                    waiting = sum(task.size for task in queue)
                    due = queue[0].arrived + timeout - now
                    if waiting >= self.parameters.max_batch_size or due <= 0:
                        return self._runs[key], self._cut(queue)
                    wait = due if wait is None else min(wait, due)
                self._ready.wait(wait)
        return None

    def _cut(self, queue: list[_Task]) -> list[_Task]:
        batch, size = [], 0
        while queue and size + queue[0].size <= self.parameters.max_batch_size:
            size += queue[0].size
            batch.append(queue.pop(0))
        return batch

    def _work(self) -> None:
        while (taken := self._take()) is not None:
            run, batch = taken
            names = batch[0].inputs.keys()
            try:
                outputs = run({name: [v for t in batch for v in t.inputs[name]] for name in names})
            except Exception:  # noqa: BLE001 (each request alone: only a bad one fails)
                for task in batch:
                    try:
                        task.outputs = run(task.inputs)
                    except Exception as error:  # noqa: BLE001 (given to its request)
                        task.error = error
                    task.done.set()
                continue
            start = 0
            for task in batch:
                task.outputs = {k: v[start : start + task.size] for k, v in outputs.items()}
                start += task.size
                task.done.set()
