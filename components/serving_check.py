"""ServingValidator: before the Pusher publishes a model, a model server must load it in a
separate process and answer as the model does in-process (InfraValidator's job, which TFX
1.16 cannot compile for KFP v2, so that clusters had no such check at all).

It starts TF Serving's `tensorflow_model_server` when it is on the PATH (the Kubeflow image
installs it) and the project's local server (`python -m serving.server`, the same gRPC API)
otherwise, on an ephemeral localhost port; loads the model in-process meanwhile; waits for the
version to become AVAILABLE; sends a few of the run's test examples through both signatures;
and checks the answers against the in-process model's and the load time and batch-1 latency
against bounds. The InfraBlessing it writes gates the Pusher: a model that does not load or
answer is never pushed.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)
from tfx import v1 as tfx
from tfx.utils import path_utils

from components.child_process import start_child
from components.splits import split_files
from components.tf_serving_api import outputs_of, predict_request, status_request
from trainer.features import (
    CLASS_ID_OUTPUT,
    DEFAULT_MODEL_NAME,
    EXAMPLES_INPUT,
    IMAGE_KEY,
    IMAGES_INPUT,
    PROBABILITIES_OUTPUT,
    SERVING_DEFAULT_SIGNATURE,
    SERVING_IMAGE_SIGNATURE,
)

# The serving contract the check holds a candidate to: signature -> its input.
SIGNATURES = {SERVING_DEFAULT_SIGNATURE: EXAMPLES_INPUT, SERVING_IMAGE_SIGNATURE: IMAGES_INPUT}
TF_SERVING = "tensorflow_model_server"
BLESSED_FILE, NOT_BLESSED_FILE = "INFRA_BLESSED", "INFRA_NOT_BLESSED"  # as InfraValidator
# gRPC waits 1 s, then 1.6x as long each time, before it reconnects to a port that refused it;
# the server binds its port only after importing TensorFlow, so the default backoff left the
# check idle for seconds after the server was up. Reconnect every 100-250 ms instead.
RECONNECT_QUICKLY = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 250),
]


def server_command(server: str, model_name: str, base_path: Path, port: int) -> list[str]:
    """`server` "auto" (TF Serving when on the PATH, else local), "tf_serving" or "local"."""
    if server == "tf_serving" or (server == "auto" and shutil.which(TF_SERVING)):
        return [
            TF_SERVING,
            f"--port={port}",
            "--rest_api_port=0",
            f"--model_name={model_name}",
            f"--model_base_path={base_path}",
            "--file_system_poll_wait_seconds=1",
        ]
    return [
        sys.executable,
        "-m",
        "serving.server",
        "--port",
        str(port),
        "--rest_api_port",
        "0",
        "--model_name",
        model_name,
        "--model_base_path",
        str(base_path),
        "--poll_interval_s",
        "0.2",
    ]


def free_port() -> int:
    """A localhost port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _copy_tree(source: str, target: Path) -> None:
    """A model folder copied from any file system TensorFlow reads (gs:// on clusters)."""
    for folder, _, files in tf.io.gfile.walk(source):
        relative = os.path.relpath(folder, source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            tf.io.gfile.copy(os.path.join(folder, name), str(target / relative / name))


def _predict(stub, model_name: str, signature: str, input_name: str, values: list[bytes]):
    request = predict_request(model_name, signature, input_name, values)
    return outputs_of(stub.Predict(request, timeout=60))


def _wait_available(channel, model_name: str, process, deadline: float) -> str | None:
    """None once the model is AVAILABLE; else why not."""
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = status_request(model_name)
    available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"the server exited with status {process.returncode}"
        try:
            versions = stub.GetModelStatus(request, timeout=2).model_version_status
            if any(v.state == available for v in versions):
                return None
            failed = [v.status.error_message for v in versions if v.status.error_message]
            if failed:
                return f"the server could not load the model: {failed[0][:300]}"
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    return "the model did not become AVAILABLE in time"


def _answers_and_latency(
    channel, model_name: str, inputs: dict, expected: dict
) -> tuple[list[str], float]:
    """(where the server's answers differ from the in-process model's, batch-1 p50 in ms)."""
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    problems = []
    for name, input_name in SIGNATURES.items():
        served = _predict(stub, model_name, name, input_name, inputs[input_name])
        want = {key: value.numpy() for key, value in expected[name].items()}
        if not np.array_equal(served[CLASS_ID_OUTPUT], want[CLASS_ID_OUTPUT]) or not np.allclose(
            served[PROBABILITIES_OUTPUT], want[PROBABILITIES_OUTPUT], atol=1e-5
        ):
            problems.append(f"{name}: the server's answers differ from the model's")
    latencies = []
    for _ in range(20):
        before = time.perf_counter()
        _predict(stub, model_name, SERVING_IMAGE_SIGNATURE, IMAGES_INPUT, inputs[IMAGES_INPUT][:1])
        latencies.append((time.perf_counter() - before) * 1000)
    return problems, float(np.median(latencies))


def _in_process(model_dir: str, examples: list[bytes]) -> tuple[list[str], dict, dict]:
    """(problems, the inputs of each signature, the in-process model's answers to them)."""
    try:
        loaded = tf.saved_model.load(model_dir)
    except Exception as error:  # any failure to load is the finding
        return [f"the SavedModel does not load: {type(error).__name__}: {str(error)[:300]}"], {}, {}
    problems = [
        f"the SavedModel lacks the signature {name!r} with input {input_name!r}"
        for name, input_name in SIGNATURES.items()
        if name not in loaded.signatures
        or input_name not in loaded.signatures[name].structured_input_signature[1]
    ]
    if problems:
        return problems, {}, {}
    parsed = tf.io.parse_example(examples, {IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)})
    inputs = {EXAMPLES_INPUT: examples, IMAGES_INPUT: list(parsed[IMAGE_KEY].numpy())}
    expected = {
        name: loaded.signatures[name](**{input_name: tf.constant(inputs[input_name])})
        for name, input_name in SIGNATURES.items()
    }
    return [], inputs, expected


@contextlib.contextmanager
def _server(command: list[str], log: Path) -> Iterator[tuple[subprocess.Popen, float]]:
    """The server `command` started, its output to `log`, and when it started; stopped
    whatever happens."""
    with open(log, "w") as log_file:
        process = start_child(  # ends with the run, even a killed one
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
    try:
        yield process, time.monotonic()
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _served(
    process: subprocess.Popen,
    started: float,
    port: int,
    log: Path,
    model_name: str,
    max_load_seconds: float,
    inputs: dict,
    expected: dict,
) -> tuple[list[str], dict[str, float]]:
    """Waits for the started server's model, then holds its answers to `inputs` against the
    in-process model's `expected` ones and measures its batch-1 latency."""
    with grpc.insecure_channel(f"127.0.0.1:{port}", RECONNECT_QUICKLY) as channel:
        why = _wait_available(channel, model_name, process, started + max_load_seconds)
        load_seconds = time.monotonic() - started
        if why:
            tail = log.read_text()[-500:].strip()
            return [f"{why} (within {max_load_seconds:.0f} s; server log: {tail})"], {}
        try:
            problems, p50 = _answers_and_latency(channel, model_name, inputs, expected)
        except grpc.RpcError as error:  # a model the server loads but cannot answer with
            refusal = f"the server refused a request: {error.code().name}: {error.details()}"
            return [refusal[:400]], {}
    return problems, {"load_seconds": round(load_seconds, 2), "batch_1_p50_ms": round(p50, 2)}


def check_serving(
    model_dir: str,
    examples: list[bytes],
    model_name: str = DEFAULT_MODEL_NAME,
    server: str = "auto",
    max_load_seconds: float = 60.0,
    max_latency_ms: float = 100.0,
) -> tuple[list[str], dict[str, float]]:
    """(the problems found, none when the model serves; measurements)."""
    with tempfile.TemporaryDirectory() as work:
        base_path = Path(work) / model_name
        _copy_tree(model_dir, base_path / "1")
        port, log = free_port(), Path(work) / "server.log"
        command = server_command(server, model_name, base_path, port)
        # The model answers in-process while the server starts (imports TensorFlow, loads the
        # model and warms it up): on 2 cores the two take about as long together as the
        # server's start alone. Its load time still counts from its start.
        with _server(command, log) as (process, started):
            problems, inputs, expected = _in_process(model_dir, examples)
            if problems:
                return problems, {}
            problems, measured = _served(
                process, started, port, log, model_name, max_load_seconds, inputs, expected
            )
    if measured and measured["batch_1_p50_ms"] > max_latency_ms:
        p50 = measured["batch_1_p50_ms"]
        problems.append(f"batch-1 latency p50 {p50:.1f} ms, over {max_latency_ms} ms")
    return problems, measured


def first_examples(examples_uri: str, split: str, count: int) -> list[bytes]:
    """The first `count` serialized examples of one split of an Examples artifact."""
    files = split_files(examples_uri, split)
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").take(count)
    return [record.numpy() for record in records]


@tfx.dsl.components.component
def ServingValidator(  # noqa: N802 (a TFX component, named like TFX's)
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.InfraBlessing],
    server: tfx.dsl.components.Parameter[str] = "auto",
    max_load_seconds: tfx.dsl.components.Parameter[float] = 60.0,
    max_latency_ms: tfx.dsl.components.Parameter[float] = 100.0,
    num_examples: tfx.dsl.components.Parameter[int] = 16,
) -> None:
    model_dir = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
    problems, measured = check_serving(
        model_dir,
        first_examples(examples.uri, "test", num_examples),
        DEFAULT_MODEL_NAME,
        server,
        max_load_seconds,
        max_latency_ms,
    )
    blessing.set_int_custom_property("blessed", 0 if problems else 1)
    blessing.set_string_custom_property("problems", "\n".join(problems))
    for key, value in measured.items():
        blessing.set_float_custom_property(key, value)
    marker = NOT_BLESSED_FILE if problems else BLESSED_FILE
    tf.io.gfile.makedirs(blessing.uri)
    with tf.io.gfile.GFile(os.path.join(blessing.uri, marker), "w") as file:
        file.write("\n".join(problems))
