"""Clients for TF Serving's REST and gRPC APIs, and so for serving.server too. The REST client
and this command line start without TensorFlow; the gRPC client (serving/grpc_client.py) needs
it for TF Serving's protos.

As a library:

    from serving.grpc_client import ServingClient
    with ServingClient("127.0.0.1:8500") as client:  # or serving.client.RestClient(":8501")
        prediction = client.predict_images([open("digit.png", "rb").read()])
        prediction.class_ids, prediction.probabilities, prediction.model_version
        client.metadata(), client.status()

From the shell (`--rest` for the REST API, on port 8501 by default):

    python -m serving.client predict digit.png some/folder t10k-images-idx3-ubyte.gz [--json]
    python -m serving.client metadata
    python -m serving.client status
"""

import argparse
import base64
import dataclasses
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from email.message import Message
from pathlib import Path

import grpc
import numpy as np

from components.data.codecs import encode_png, is_idx_images, read_idx
from trainer.features import (
    CLASS_ID_OUTPUT,
    CLASS_NAME_OUTPUT,
    CONFIDENCE_OUTPUT,
    CONFIDENCE_THRESHOLD,
    DEFAULT_MODEL_NAME,
    EXAMPLES_INPUT,
    IMAGE_SUFFIXES,
    IMAGES_INPUT,
    PROBABILITIES_OUTPUT,
    REQUEST_ID_HEADER,
    SERVING_DEFAULT_SIGNATURE,
    SERVING_IMAGE_SIGNATURE,
)

DEFAULT_TARGET = "127.0.0.1:8500"
DEFAULT_REST_TARGET = "127.0.0.1:8501"
# TensorFlow's names for the DataType values that REST's JSON spells differently.
JSON_DTYPES = {"DT_FLOAT": "float32", "DT_DOUBLE": "float64", "DT_HALF": "float16"}


@dataclasses.dataclass
class Prediction:
    probabilities: np.ndarray  # float32 [N, classes]
    class_ids: np.ndarray  # int64 [N]
    class_names: list[str]  # the model's names for class_ids
    confidences: np.ndarray  # float32 [N]: 0 for pictures without ink
    model_version: int | None  # None over REST: TF Serving's REST answer does not say
    request_id: str | None = None  # what a correction names; None where the server keeps none


@dataclasses.dataclass
class FileResult:
    source: str  # file path, or "<idx file>#<index>"
    class_id: int
    class_name: str
    probability: float
    confidence: float
    not_sure: bool  # confidence below the model's CONFIDENCE_THRESHOLD (or no digit at all)
    latency_ms: float  # of the request that carried this image
    model_version: int | None
    request_id: str | None  # of the request that carried this image, and its index there
    index: int


class RestError(Exception):
    """A refusal over REST: the HTTP status and the server's `error` message."""


class PredictionClient:
    """What both clients offer on top of their `predict`."""

    def predict(self, signature_name: str, input_name: str, values: list[bytes]) -> Prediction:
        raise NotImplementedError

    def predict_images(self, images: list[bytes]) -> Prediction:
        """Encoded images (PNG, JPEG, BMP, GIF; any size) through `serving_image`."""
        return self.predict(SERVING_IMAGE_SIGNATURE, IMAGES_INPUT, images)

    def predict_examples(self, examples: list[bytes]) -> Prediction:
        """Serialized tf.Examples with the raw `image` feature through `serving_default`."""
        return self.predict(SERVING_DEFAULT_SIGNATURE, EXAMPLES_INPUT, examples)

    def classify_files(
        self, inputs: Iterable[tuple[str, bytes]], batch_size: int = 32
    ) -> Iterator[FileResult]:
        """(source, image bytes) pairs, sent `batch_size` images per request."""
        batch: list[tuple[str, bytes]] = []
        for item in inputs:
            batch.append(item)
            if len(batch) == batch_size:
                yield from self._classify_batch(batch)
                batch = []
        if batch:
            yield from self._classify_batch(batch)

    def _classify_batch(self, batch: list[tuple[str, bytes]]) -> Iterator[FileResult]:
        started = time.perf_counter()
        prediction = self.predict_images([image for _, image in batch])
        latency_ms = (time.perf_counter() - started) * 1000
        for index, ((source, _), class_id, class_name, probabilities, confidence) in enumerate(
            zip(
                batch,
                prediction.class_ids,
                prediction.class_names,
                prediction.probabilities,
                prediction.confidences,
                strict=True,
            )
        ):
            yield FileResult(
                source,
                int(class_id),
                class_name,
                float(probabilities[class_id]),
                float(confidence),
                bool(confidence < CONFIDENCE_THRESHOLD),
                latency_ms,
                prediction.model_version,
                prediction.request_id,
                index,
            )


class RestClient(PredictionClient):
    """The same calls over TF Serving's REST API; needs neither gRPC nor TensorFlow."""

    def __init__(
        self,
        target: str = DEFAULT_REST_TARGET,
        model_name: str = DEFAULT_MODEL_NAME,
        timeout_s: float = 10.0,
        version: int | None = None,
    ):
        self.base_url = target if "://" in target else f"http://{target}"
        self.model_name = model_name
        self.timeout_s = timeout_s
        self.version = version

    def __enter__(self) -> "RestClient":
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def _url(self, suffix: str = "") -> str:
        version = f"/versions/{self.version}" if self.version is not None else ""
        return f"{self.base_url}/v1/models/{self.model_name}{version}{suffix}"

    def _call(self, url: str, body: dict | None = None) -> dict:
        return self._call_with_headers(url, body)[0]

    def _call_with_headers(self, url: str, body: dict | None = None) -> tuple[dict, Message]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read()), response.headers
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read())["error"]
            except (ValueError, KeyError):
                message = error.reason
            raise RestError(f"HTTP {error.code}: {message}") from None

    def predict(self, signature_name: str, input_name: str, values: list[bytes]) -> Prediction:
        rows = [{"b64": base64.b64encode(value).decode()} for value in values]
        body = {"signature_name": signature_name, "instances": rows}
        document, headers = self._call_with_headers(self._url(":predict"), body)
        predictions = document["predictions"]
        probabilities = np.array([p[PROBABILITIES_OUTPUT] for p in predictions], np.float32)
        return Prediction(
            probabilities=probabilities,
            class_ids=np.array([p[CLASS_ID_OUTPUT] for p in predictions], np.int64),
            class_names=[p.get(CLASS_NAME_OUTPUT, str(p[CLASS_ID_OUTPUT])) for p in predictions],
            confidences=np.array(
                [p.get(CONFIDENCE_OUTPUT, max(p[PROBABILITIES_OUTPUT])) for p in predictions],
                np.float32,
            ),
            model_version=self.version,
            request_id=headers.get(REQUEST_ID_HEADER),
        )

    def correct(self, request_id: str, class_name: str, index: int = 0) -> dict:
        """Says which class picture `index` of an answered request really was
        (serving/corrections.py); the server's record of it."""
        body = {"request_id": request_id, "index": index, "class_name": class_name}
        return self._call(f"{self.base_url}/v1/models/{self.model_name}:correct", body)

    def metadata(self) -> dict[str, dict]:
        """{signature: {"inputs": {name: (dtype, shape)}, "outputs": {...}}}"""
        document = self._call(self._url("/metadata"))
        signatures = document["metadata"]["signature_def"]["signature_def"]

        def describe(tensors: dict) -> dict:
            return {
                name: (
                    JSON_DTYPES.get(info["dtype"], info["dtype"].removeprefix("DT_").lower()),
                    [int(d["size"]) for d in info["tensor_shape"].get("dim", [])],
                )
                for name, info in tensors.items()
            }

        return {
            name: {"inputs": describe(sig["inputs"]), "outputs": describe(sig["outputs"])}
            for name, sig in signatures.items()
        }

    def status(self) -> list[tuple[int, str]]:
        """(version, state) of every version the server knows, newest first."""
        document = self._call(self._url())
        return [(int(s["version"]), s["state"]) for s in document["model_version_status"]]


def load_inputs(paths: Iterable[Path]) -> Iterator[tuple[str, bytes]]:
    """Image files as they are, folders' image files (recursively, sorted), and the images of
    IDX files encoded as PNG. A missing or unreadable path is an error that names it."""
    for path in paths:
        if path.is_dir():
            yield from load_inputs(
                sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            )
        elif not path.is_file():
            raise FileNotFoundError(f"No such file or folder: {path}")
        elif is_idx_images(path):
            for index, pixels in enumerate(read_idx(path)):
                yield f"{path}#{index}", encode_png(pixels)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            yield str(path), path.read_bytes()
        else:
            raise ValueError(
                f"{path}: not an image ({', '.join(IMAGE_SUFFIXES)}) nor an IDX images file"
            )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", choices=["predict", "metadata", "status", "correct"])
    parser.add_argument("files", nargs="*", type=Path, help="images, folders or IDX files")
    parser.add_argument("--rest", action="store_true", help="TF Serving's REST API, not gRPC")
    parser.add_argument(
        "--target", help=f"default {DEFAULT_TARGET}, {DEFAULT_REST_TARGET} with --rest"
    )
    parser.add_argument("--model_name", default=DEFAULT_MODEL_NAME)
    parser.add_argument("--version", type=int)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--timeout_s", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    correction = parser.add_argument_group("correct (over REST): what a picture really was")
    correction.add_argument("--request_id", help="as predict printed it (--json)")
    correction.add_argument("--index", type=int, default=0, help="the picture in that request")
    correction.add_argument("--class_name")
    args = parser.parse_args(argv)
    if args.command == "correct" and not (args.request_id and args.class_name):
        parser.error("correct needs --request_id and --class_name")
    if args.command == "predict" and not args.files:
        parser.error("predict needs files, folders or IDX files")
    return args


def result_line(result: FileResult) -> str:
    """One answer as `make predict` prints it: file, class, confidence, latency."""
    answer = f"class {result.class_name} (id {result.class_id})"
    if result.not_sure:
        answer = f"not sure (perhaps {result.class_name})"
    if result.confidence == 0:
        answer = "not a digit (no ink found)"
    return (
        f"{result.source}\t{answer}\tconfidence {result.confidence:.4f}\t{result.latency_ms:.1f} ms"
    )


def run_command(client: PredictionClient, args: argparse.Namespace) -> None:
    if args.command == "correct":
        print(json.dumps(client.correct(args.request_id, args.class_name, args.index)))
    elif args.command == "metadata":
        print(json.dumps(client.metadata(), indent=2))
    elif args.command == "status":
        for version, state in client.status():
            print(f"version {version}: {state}")
    else:
        for result in client.classify_files(load_inputs(args.files), args.batch_size):
            print(json.dumps(dataclasses.asdict(result)) if args.json else result_line(result))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rest or args.command == "correct":
        client = RestClient(
            args.target or DEFAULT_REST_TARGET, args.model_name, args.timeout_s, args.version
        )
    else:
        from serving.grpc_client import ServingClient  # TensorFlow's protos: seconds to import

        client = ServingClient(
            args.target or DEFAULT_TARGET, args.model_name, args.timeout_s, version=args.version
        )
    with client:
        try:
            run_command(client, args)
        except grpc.RpcError as error:
            print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
        except (RestError, urllib.error.URLError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
