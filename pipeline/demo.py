"""The end of `make run`: serve the pushed model over gRPC and classify the test digits."""

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf

from components.splits import split_files
from serving.core import ServingCore
from serving.grpc_client import ServingClient
from serving.model_registry import ModelRegistry
from serving.model_store import VersionedModel
from serving.server import create_server
from trainer.features import IMAGE_KEY, LABEL_KEY


@dataclasses.dataclass
class DemoResult:
    address: str
    model_version: int
    accuracy: float
    images: int
    batch_size: int
    batch_p50_ms: float
    single_p50_ms: float


# At most this many test digits go through the server after a run: a demonstration (the
# Evaluator measured the whole split), whose time and memory stay bounded on large data.
DEMO_DIGITS = 10_000
FEATURE_SPECS = {
    IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
    LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
}


def split_batches(
    examples_uris: list[Path], split: str, keys: tuple[str, ...] = (IMAGE_KEY, LABEL_KEY)
) -> Iterator[dict[str, np.ndarray]]:
    """One split of ExampleGen outputs (one per span) streamed in batches of 1,024: the
    features `keys` (others are not decoded) as arrays."""
    files = [path for uri in examples_uris for path in split_files(str(uri), split)]
    spec = {key: FEATURE_SPECS[key] for key in keys}
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1024)
    for batch in records.map(lambda serialized: tf.io.parse_example(serialized, spec)):
        yield {key: value.numpy() for key, value in batch.items()}


def read_split(
    examples_uris: list[Path], split: str, limit: int | None = None
) -> tuple[list[bytes], np.ndarray]:
    """Encoded images and labels of one split (its first `limit` examples, if given)."""
    images: list[bytes] = []
    labels: list[np.ndarray] = []
    for batch in split_batches(examples_uris, split):
        images.extend(batch[IMAGE_KEY])
        labels.append(batch[LABEL_KEY])
        if limit is not None and len(images) >= limit:
            break
    return images[:limit], np.concatenate(labels or [np.zeros(0, np.int64)])[:limit]


def split_labels(examples_uris: list[Path], split: str) -> np.ndarray:
    """The labels of one split, without decoding its images."""
    batches = [b[LABEL_KEY] for b in split_batches(examples_uris, split, keys=(LABEL_KEY,))]
    return np.concatenate(batches or [np.zeros(0, np.int64)])


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def demonstrate(
    model_name: str, base_path: Path, images: list[bytes], labels: np.ndarray, batch_size: int = 64
) -> DemoResult:
    """Starts the local server on an ephemeral port, classifies `images` through the client in
    batches, times 50 single-image requests, and stops the server."""
    model = VersionedModel(model_name, base_path)
    model.start()
    server, port = create_server(ServingCore(ModelRegistry.of(model)), "127.0.0.1:0")
    address = f"127.0.0.1:{port}"
    try:
        with ServingClient(address, model_name) as client:
            results = list(client.classify_files(enumerate(images), batch_size))
            single = [_timed(lambda: client.predict_images(images[:1])) for _ in range(50)]
    finally:
        server.stop(grace=None)
        model.stop()
    predicted = np.array([result.class_id for result in results])
    return DemoResult(
        address=address,
        model_version=results[0].model_version,
        accuracy=float(np.mean(predicted == labels)),
        images=len(images),
        batch_size=batch_size,
        batch_p50_ms=float(np.median([result.latency_ms for result in results])),
        single_p50_ms=float(np.median(single)),
    )
