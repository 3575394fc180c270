"""The local server and the client over real gRPC on an ephemeral localhost port."""

import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from PIL import Image
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from components.data.codecs import encode_png, write_idx
from components.data.sample import load_sample, make_example
from components.serving_check import free_port
from pipeline.settings import PROJECT_ROOT
from serving.core import ServingCore
from serving.grpc_client import ServingClient
from serving.model_registry import ModelRegistry
from serving.model_store import VersionedModel
from serving.server import SERVING_ENVIRONMENT, create_server
from trainer.features import (
    CLASS_ID_OUTPUT,
    CLASS_NAME_OUTPUT,
    DEFAULT_MODEL_NAME,
    EXAMPLES_INPUT,
    IMAGES_INPUT,
    PROBABILITIES_OUTPUT,
    SERVING_DEFAULT_SIGNATURE,
    SERVING_IMAGE_SIGNATURE,
)


def wait_until(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def base_path(tmp_path_factory, trained_model_dir):
    path = tmp_path_factory.mktemp("served") / DEFAULT_MODEL_NAME
    shutil.copytree(trained_model_dir, path)
    return path


@pytest.fixture(scope="module")
def server(base_path):
    model = VersionedModel(DEFAULT_MODEL_NAME, base_path, poll_interval_s=0.1)
    model.start()
    grpc_server, port = create_server(ServingCore(ModelRegistry.of(model)), "127.0.0.1:0")
    yield f"127.0.0.1:{port}"
    grpc_server.stop(grace=None)
    model.stop()


@pytest.fixture(scope="module")
def client(server):
    with ServingClient(server, retries=0) as serving_client:
        yield serving_client


@pytest.fixture(scope="module")
def held_out():
    """Ten sample digits the trained fixture model never saw, as PNG bytes, and labels."""
    pixels, labels = load_sample(5000, seed=2)
    return [encode_png(p) for p in pixels[4990:]], labels[4990:]


def test_predictions_equal_the_in_process_model(client, base_path, held_out):
    pngs, _ = held_out
    in_process = tf.saved_model.load(str(base_path / "1")).signatures
    expected = in_process[SERVING_IMAGE_SIGNATURE](**{IMAGES_INPUT: tf.constant(pngs)})
    by_image = client.predict_images(pngs)
    examples = [make_example(png, 0, "unknown").SerializeToString() for png in pngs]
    by_example = client.predict_examples(examples)
    for served in (by_image, by_example):
        np.testing.assert_allclose(served.probabilities, expected[PROBABILITIES_OUTPUT], rtol=1e-5)
        np.testing.assert_array_equal(served.class_ids, expected[CLASS_ID_OUTPUT])
        assert served.class_names == [n.decode() for n in expected[CLASS_NAME_OUTPUT].numpy()]
        assert served.model_version == 1


def test_metadata_lists_both_signatures_with_inputs_and_outputs(client):
    metadata = client.metadata()
    assert set(metadata) == {SERVING_DEFAULT_SIGNATURE, SERVING_IMAGE_SIGNATURE}
    assert metadata[SERVING_DEFAULT_SIGNATURE]["inputs"] == {EXAMPLES_INPUT: ("string", [-1])}
    assert metadata[SERVING_IMAGE_SIGNATURE]["inputs"] == {IMAGES_INPUT: ("string", [-1])}
    for signature in metadata.values():
        assert signature["outputs"][PROBABILITIES_OUTPUT][0] == "float32"
        assert signature["outputs"][CLASS_ID_OUTPUT] == ("int64", [-1])
        assert signature["outputs"][CLASS_NAME_OUTPUT] == ("string", [-1])


def test_status_shows_the_served_version_available(client):
    assert client.status()[0] == (1, "AVAILABLE")


def raw_predict(target: str, **fields) -> grpc.RpcError | predict_pb2.PredictResponse:
    """A hand-built PredictRequest, the way any TF Serving client would send it."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = fields.pop("model", DEFAULT_MODEL_NAME)
    if "version" in fields:
        request.model_spec.version.value = fields.pop("version")
    request.model_spec.signature_name = fields.pop("signature", SERVING_IMAGE_SIGNATURE)
    for name, proto in fields.pop("inputs").items():
        request.inputs[name].CopyFrom(proto)
    with grpc.insecure_channel(target) as channel:
        try:
            return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                request, timeout=30
            )
        except grpc.RpcError as error:
            return error


def test_bad_requests_get_their_status_codes_and_the_server_keeps_serving(server, held_out):
    png = held_out[0][0]
    good = {IMAGES_INPUT: tf.make_tensor_proto([png])}
    cases = {
        "unknown model": (grpc.StatusCode.NOT_FOUND, dict(model="other", inputs=good)),
        "unknown version": (grpc.StatusCode.NOT_FOUND, dict(version=99, inputs=good)),
        "unknown signature": (grpc.StatusCode.INVALID_ARGUMENT, dict(signature="x", inputs=good)),
        "wrong input name": (
            grpc.StatusCode.INVALID_ARGUMENT,
            dict(inputs={"pixels": tf.make_tensor_proto([png])}),
        ),
        "wrong dtype": (
            grpc.StatusCode.INVALID_ARGUMENT,
            dict(inputs={IMAGES_INPUT: tf.make_tensor_proto([0.5])}),
        ),
        "wrong shape": (
            grpc.StatusCode.INVALID_ARGUMENT,
            dict(inputs={IMAGES_INPUT: tf.make_tensor_proto([[png]])}),
        ),
        "undecodable image": (
            grpc.StatusCode.INVALID_ARGUMENT,
            dict(inputs={IMAGES_INPUT: tf.make_tensor_proto([b"\x89PNG truncated"])}),
        ),
    }
    for case, (code, fields) in cases.items():
        answer = raw_predict(server, **fields)
        assert isinstance(answer, grpc.RpcError), case
        assert answer.code() == code, (case, answer.details())
        assert answer.details(), case
    assert raw_predict(server, inputs=good).outputs[CLASS_ID_OUTPUT].int64_val


def test_classify_is_refused_for_predict_signatures_as_tf_serving_does(server):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = DEFAULT_MODEL_NAME
    with grpc.insecure_channel(server) as channel:
        with pytest.raises(grpc.RpcError) as raised:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Classify(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "tensorflow/serving/classify" in raised.value.details()


def test_new_version_is_picked_up_and_a_broken_one_is_not(client, base_path, held_out):
    shutil.copytree(base_path / "1", base_path / "2")
    wait_until(lambda: client.predict_images(held_out[0][:1]).model_version == 2)
    broken = base_path / "3"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    wait_until(lambda: dict(client.status()).get(3) == "END")
    assert dict(client.status()) == {3: "END", 2: "AVAILABLE", 1: "END"}
    shutil.rmtree(broken)  # status lists only versions on disk
    wait_until(lambda: 3 not in dict(client.status()))
    assert client.predict_images(held_out[0][:1]).model_version == 2


def test_client_retry_reaches_a_server_that_starts_late(base_path, held_out):
    port = free_port()
    answers = []

    def predict() -> None:
        with ServingClient(f"127.0.0.1:{port}", retries=8, backoff_s=0.1) as late:
            answers.append(late.predict_images(held_out[0][:2]))

    caller = threading.Thread(target=predict)
    caller.start()
    time.sleep(1.0)  # the client has failed and is backing off by now
    model = VersionedModel(DEFAULT_MODEL_NAME, base_path)
    model.start()
    grpc_server, _ = create_server(ServingCore(ModelRegistry.of(model)), f"127.0.0.1:{port}")
    try:
        caller.join(timeout=60)
        assert answers and answers[0].class_ids.shape == (2,)
    finally:
        grpc_server.stop(grace=None)
        model.stop()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "serving.client", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_prints_the_right_class_for_digit_png_files(server, tmp_path, held_out):
    pngs, labels = held_out
    for index, (png, label) in enumerate(zip(pngs, labels, strict=True)):
        (tmp_path / f"digit{index}_is_{label}.png").write_bytes(png)
    completed = run_cli("predict", str(tmp_path), "--target", server, "--batch_size", "4")
    assert completed.returncode == 0, completed.stderr[-2000:]
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == 10
    right = [line.split("\t")[1].startswith(f"class {line.split('_is_')[1][0]} ") for line in lines]
    assert sum(right) >= 9  # the fixture model is about 95 % accurate


def test_cli_answers_alike_for_every_format_the_readme_names(server, tmp_path):
    """PNG, JPEG, BMP and GIF of one digit, grey and colour: one class for all eight."""
    pixels, _ = load_sample(5000, seed=2)
    for suffix in ("png", "jpg", "bmp", "gif"):
        for mode in ("L", "RGB"):
            picture = Image.fromarray(pixels[4995]).convert(mode)
            picture.save(tmp_path / f"{mode}.{suffix}", quality=95)  # JPEG's: few artefacts
    completed = run_cli("predict", str(tmp_path), "--target", server, "--json")
    assert completed.returncode == 0, completed.stderr[-2000:]
    answers = {
        Path(answer["source"]).name: answer["class_name"]
        for answer in map(json.loads, completed.stdout.strip().splitlines())
    }
    assert len(answers) == 8 and len(set(answers.values())) == 1, answers


def test_cli_reads_idx_files_and_prints_json(server, tmp_path):
    pixels, _ = load_sample(5, seed=3)
    idx = tmp_path / "t10k-images-idx3-ubyte.gz"
    write_idx(idx, pixels)
    completed = run_cli("predict", str(idx), "--target", server, "--json")
    assert completed.returncode == 0, completed.stderr[-2000:]
    lines = completed.stdout.strip().splitlines()
    assert [line.split('"source": "')[1].split('"')[0] for line in lines] == [
        f"{idx}#{i}" for i in range(5)
    ]


def test_cli_names_a_missing_file(server, tmp_path):
    completed = run_cli("predict", str(tmp_path / "nope.png"), "--target", server)
    assert completed.returncode == 2
    assert "nope.png" in completed.stderr


def png_header(width: int, height: int) -> bytes:
    """The first bytes of a PNG of that size: all that the limits read."""
    ihdr = struct.pack(">II", width, height) + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0" * 4


def refused(answer, code=grpc.StatusCode.INVALID_ARGUMENT) -> str:
    assert isinstance(answer, grpc.RpcError), answer
    assert answer.code() == code, answer.details()
    return answer.details()


def test_a_declared_shape_must_hold_its_values_and_stay_under_the_batch_limit(server, held_out):
    hostile = tf.make_tensor_proto([held_out[0][0]])
    hostile.tensor_shape.dim[0].size = 30000  # 367 bytes that TensorFlow would fill to 30,000
    assert "over the limit of 1024" in refused(raw_predict(server, inputs={IMAGES_INPUT: hostile}))
    short = tf.make_tensor_proto([held_out[0][0]])
    short.tensor_shape.dim[0].size = 3
    details = refused(raw_predict(server, inputs={IMAGES_INPUT: short}))
    assert "declares shape [3] but holds 1 values" in details
    batch = tf.make_tensor_proto([held_out[0][0]] * 1025)
    assert "--max_batch_size" in refused(raw_predict(server, inputs={IMAGES_INPUT: batch}))


def test_images_over_the_limits_are_refused_before_decoding(server, held_out):
    cases = {
        "--max_image_pixels": [png_header(20000, 20000)],
        "--max_image_bytes": [held_out[0][0] + b"\0" * (8 * 1024 * 1024)],
        "--max_request_pixels": [png_header(4000, 4000)] * 5,
    }
    for limit, images in cases.items():
        answer = raw_predict(server, inputs={IMAGES_INPUT: tf.make_tensor_proto(images)})
        assert limit in refused(answer)
    answer = raw_predict(server, inputs={IMAGES_INPUT: tf.make_tensor_proto([b"GIF89a"])})
    assert "images[0] is not a PNG, JPEG, GIF or BMP image" in refused(answer)


def test_garbage_examples_are_invalid_argument_naming_the_index(server, held_out):
    good = make_example(held_out[0][0], 0, "0").SerializeToString()
    for seed in range(20):
        garbage = np.random.default_rng(seed).bytes(64)
        answer = raw_predict(
            server,
            signature=SERVING_DEFAULT_SIGNATURE,
            inputs={EXAMPLES_INPUT: tf.make_tensor_proto([good, garbage])},
        )
        assert "examples[1]" in refused(answer), seed


def test_error_messages_name_the_request_not_tensorflow_internals(server, held_out):
    broken_png = held_out[0][0][:40]  # a PNG header with its body cut off
    answer = raw_predict(
        server, inputs={IMAGES_INPUT: tf.make_tensor_proto([held_out[0][0], broken_png])}
    )
    details = refused(answer)
    assert details == "images[1] could not be decoded as an image"


def served_versions(model: VersionedModel) -> dict[int, str]:
    return {version: state.state for version, state in model.states().items()}


def test_version_policy_retries_fixed_versions_rolls_back_and_forgets_removed_ones(
    tmp_path, trained_model_dir
):
    base = tmp_path / DEFAULT_MODEL_NAME
    shutil.copytree(trained_model_dir / "1", base / "1")
    (base / "2").mkdir()
    (base / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")
    model = VersionedModel(DEFAULT_MODEL_NAME, base)
    model.poll()
    assert served_versions(model) == {2: "END", 1: "AVAILABLE"}
    assert "failed to load" in model.states()[2].error
    model.poll()  # unchanged: not tried again
    assert model.get().version == 1
    shutil.rmtree(base / "2")
    shutil.copytree(trained_model_dir / "1", base / "2")  # fixed under the same number
    model.poll()
    assert served_versions(model) == {2: "AVAILABLE", 1: "END"} and not model.states()[2].error
    shutil.rmtree(base / "2")  # the served version deleted: the next highest takes over
    model.poll()
    assert served_versions(model) == {1: "AVAILABLE"} and model.get().version == 1
    shutil.rmtree(base / "1")
    model.poll()
    assert served_versions(model) == {}
    with pytest.raises(LookupError):
        model.get()


def test_sigterm_lets_requests_in_flight_finish_and_refuses_new_ones(base_path):
    port, rest_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.server", "--model_base_path", str(base_path)]
        + ["--port", str(port), "--rest_api_port", str(rest_port), "--drain_s", "120"]
        + ["--workers", "16"],
        cwd=PROJECT_ROOT,
        env={k: v for k, v in os.environ.items() if k not in SERVING_ENVIRONMENT},
        stderr=subprocess.PIPE,
        text=True,
    )
    target = f"127.0.0.1:{port}"
    gradient = (np.add.outer(np.arange(4000), np.arange(4000)) % 256).astype(np.uint8)
    heavy = [encode_png(gradient)] * 4  # 64 megapixels: the most one request may ask for
    answers, finished = [], []

    def send() -> None:
        with ServingClient(target, timeout_s=120) as slow_client:
            answers.append(slow_client.predict_images(heavy))
        finished.append(time.monotonic())

    try:
        with ServingClient(target, retries=8) as client:
            client.status()  # up
            # Large requests run one at a time: the last of twelve waits for the others.
            callers = [threading.Thread(target=send) for _ in range(12)]
            for caller in callers:
                caller.start()
            time.sleep(0.5)
            signalled = time.monotonic()
            process.terminate()
            time.sleep(0.2)
            # A new connection while the twelve drain: refused.
            fresh = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
            with pytest.raises(grpc.RpcError):
                model_service_pb2_grpc.ModelServiceStub(fresh).GetModelStatus(
                    get_model_status_pb2.GetModelStatusRequest(), timeout=5
                )
            fresh.close()
            assert process.poll() is None  # still draining
            for caller in callers:
                caller.join(timeout=180)
        assert process.wait(timeout=180) == 0, process.stderr.read()[-3000:]
    finally:
        process.kill()
    log = process.stderr.read()
    assert len(answers) == 12 and answers[0].class_ids.shape == (4,), log[-2000:]
    assert max(finished) > signalled  # in flight when the signal came
    assert "Stopping: no new requests" in log and "Stopped" in log
    assert "TensorFlow kernels: TensorFlow's own (oneDNN off)" in log  # SERVING_ENVIRONMENT


# --model_config_file, as a TF Serving deployment runs: two models, version labels over gRPC and
# REST, a canary rollout and a roll-back by editing the file (polled) and by
# HandleReloadConfigRequest, and configs refused at start-up and on a reload.

OTHER_MODEL = "digits_copy"


def config_text(bases: dict[str, Path], labels: dict[str, int]) -> str:
    label_lines = "".join(
        f'    version_labels {{ key: "{label}" value: {version} }}\n'
        for label, version in labels.items()
    )
    return f"""model_config_list {{
  config {{
    name: "{DEFAULT_MODEL_NAME}"
    base_path: "{bases[DEFAULT_MODEL_NAME]}"
    model_platform: "tensorflow"
    model_version_policy {{ all {{}} }}
{label_lines}  }}
  config {{
    name: "{OTHER_MODEL}"
    base_path: "{bases[OTHER_MODEL]}"
    model_platform: "tensorflow"
  }}
}}
"""


def write_config(path: Path, text: str) -> None:
    """Replaced whole, as a deployment's config map is: a poll never reads half a file."""
    staged = path.with_suffix(".staged")
    staged.write_text(text)
    staged.replace(path)


@pytest.fixture(scope="module")
def bases(tmp_path_factory, trained_model_dir) -> dict[str, Path]:
    """mnist_cnn with versions 1 and 2 (the same model), and a second model with version 1."""
    root = tmp_path_factory.mktemp("models")
    shutil.copytree(trained_model_dir, root / DEFAULT_MODEL_NAME)
    shutil.copytree(trained_model_dir / "1", root / DEFAULT_MODEL_NAME / "2")
    shutil.copytree(trained_model_dir, root / OTHER_MODEL)
    return {DEFAULT_MODEL_NAME: root / DEFAULT_MODEL_NAME, OTHER_MODEL: root / OTHER_MODEL}


def start_server(config: Path, *flags: str) -> tuple[subprocess.Popen, int, int, Path]:
    """The server on `config`, its ports, and its log (beside the config)."""
    port, rest_port = free_port(), free_port()
    log = config.with_suffix(".log")
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.server", "--model_config_file", str(config)]
        + ["--port", str(port), "--rest_api_port", str(rest_port), *flags],
        cwd=PROJECT_ROOT,
        stderr=log.open("w"),
    )
    return process, port, rest_port, log


@pytest.fixture(scope="module")
def configured_server(bases, tmp_path_factory):
    config = tmp_path_factory.mktemp("config") / "models.config"
    write_config(config, config_text(bases, {"stable": 1, "canary": 2}))
    process, port, rest_port, log = start_server(
        config, "--model_config_file_poll_wait_seconds", "0.2"
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=120)
    rest = f"http://127.0.0.1:{rest_port}"
    yield {"config": config, "channel": channel, "rest": rest, "log": log}
    channel.close()
    process.terminate()
    process.wait(timeout=60)


def predict_version(channel, model: str = DEFAULT_MODEL_NAME, label: str | None = None) -> int:
    """The version that answers a Predict for `model` (by `label`, if given)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = SERVING_IMAGE_SIGNATURE
    if label:
        request.model_spec.version_label = label
    pixels = tf.zeros([28, 28, 1], tf.uint8)
    request.inputs[IMAGES_INPUT].CopyFrom(
        tf.make_tensor_proto([tf.io.encode_png(pixels).numpy()], dtype=tf.string)
    )
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    return stub.Predict(request, timeout=30).model_spec.version.value


def rest_version(rest: str, label: str) -> int:
    """The version REST's metadata names for `label`."""
    url = f"{rest}/v1/models/{DEFAULT_MODEL_NAME}/labels/{label}/metadata"
    with urllib.request.urlopen(url, timeout=30) as response:
        return int(json.load(response)["model_spec"]["version"])


def reload_request(bases, labels: dict[str, int]) -> model_management_pb2.ReloadConfigRequest:
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(config_text(bases, labels), request.config)
    return request


def test_labels_choose_the_version_over_grpc_and_rest(configured_server):
    channel, rest = configured_server["channel"], configured_server["rest"]
    assert predict_version(channel) == 2  # no label: the latest
    labelled = [predict_version(channel, label=label) for label in ("stable", "canary")]
    assert labelled == [1, 2]
    assert (rest_version(rest, "stable"), rest_version(rest, "canary")) == (1, 2)
    body = json.dumps({"signature_name": SERVING_IMAGE_SIGNATURE, "instances": [{"b64": ""}]})
    request = urllib.request.Request(
        f"{rest}/v1/models/{DEFAULT_MODEL_NAME}/labels/stable:predict", body.encode()
    )
    with pytest.raises(urllib.error.HTTPError) as refused:  # an empty picture: the label resolved
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400 and "not a PNG" in json.load(refused.value)["error"]
    with pytest.raises(grpc.RpcError) as unknown:
        predict_version(channel, label="beta")
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert unknown.value.details() == "Unrecognized servable version label: beta"


def test_each_model_of_the_config_is_served_with_its_own_status(configured_server):
    channel = configured_server["channel"]
    assert predict_version(channel, OTHER_MODEL) == 1
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    status = models.GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": OTHER_MODEL}), timeout=30
    )
    assert [(s.version, s.state) for s in status.model_version_status] == [(1, 30)]  # AVAILABLE
    with pytest.raises(grpc.RpcError) as missing:
        predict_version(channel, "no_such_model")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert "Servable not found for request: Latest(no_such_model)" in missing.value.details()


def test_a_canary_rollout_and_a_roll_back_by_the_config_file_and_by_rpc(configured_server, bases):
    """Edit the file: stable moves to the canary's version 2; a config giving a label to a
    version not on disk, and one that does not parse, are refused and stable stays at 2; then
    HandleReloadConfigRequest rolls stable back to 1."""
    channel, config = configured_server["channel"], configured_server["config"]
    write_config(config, config_text(bases, {"stable": 2, "canary": 2}))
    wait_until(lambda: predict_version(channel, label="stable") == 2)
    write_config(config, config_text(bases, {"stable": 9}))
    wait_until(
        lambda: "Request to assign label to version 9" in configured_server["log"].read_text()
    )
    write_config(config, "model_config_list { config { name: ")
    wait_until(
        lambda: configured_server["log"].read_text().count("the running configuration stays") == 2
    )
    assert f"{config} line 1:36 : '': Expected string" in configured_server["log"].read_text()
    assert (
        predict_version(channel, label="stable") == 2
        and predict_version(channel, label="canary") == 2
    )

    models = model_service_pb2_grpc.ModelServiceStub(channel)
    models.HandleReloadConfigRequest(reload_request(bases, {"stable": 1, "canary": 2}), timeout=60)
    assert predict_version(channel, label="stable") == 1
    with pytest.raises(grpc.RpcError) as refused:
        models.HandleReloadConfigRequest(reload_request(bases, {"stable": 9}), timeout=60)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert predict_version(channel, label="stable") == 1


def test_a_config_with_a_label_for_a_version_not_on_disk_is_refused_at_start_up(bases, tmp_path):
    config = tmp_path / "models.config"
    write_config(config, config_text(bases, {"stable": 1, "canary": 9}))
    process, *_, log = start_server(config)
    assert process.wait(timeout=120) != 0
    (line,) = [line for line in log.read_text().splitlines() if line.startswith("error:")]
    assert line == (
        f"error: {config} line 8: Request to assign label to version 9 of model "
        f"{DEFAULT_MODEL_NAME}, which is not currently available for inference"
    )
