"""The end of `make run`: serve the pushed model over gRPC and classify the test digits."""

import dataclasses
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from serving.core import ServingCore
from serving.grpc_client import ServingClient
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


def read_split(examples_uris: list[Path], split: str) -> tuple[list[bytes], np.ndarray]:
    """Encoded images and labels of one split of ExampleGen outputs (one per span)."""
    files = [
        str(path) for uri in examples_uris for path in sorted((uri / f"Split-{split}").glob("*"))
    ]
    spec = {
        IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    }
    images, labels = [], []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.io.parse_single_example(record, spec)
        images.append(example[IMAGE_KEY].numpy())
        labels.append(int(example[LABEL_KEY]))
    return images, np.array(labels)


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
    server, port = create_server(ServingCore(model), "127.0.0.1:0")
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
