"""`python -m serving.server --model_config_file`, as a TF Serving deployment runs: two models,
version labels over gRPC and REST, a canary rollout and a roll-back by editing the file (polled)
and by HandleReloadConfigRequest, and configs refused at start-up and on a reload."""

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from components.serving_check import free_port
from pipeline.settings import PROJECT_ROOT
from trainer.features import DEFAULT_MODEL_NAME, IMAGES_INPUT, SERVING_IMAGE_SIGNATURE

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
def server(bases, tmp_path_factory):
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


def predict(channel, model: str = DEFAULT_MODEL_NAME, label: str | None = None) -> int:
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


def wait_for(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_labels_choose_the_version_over_grpc_and_rest(server):
    channel, rest = server["channel"], server["rest"]
    assert predict(channel) == 2  # no label: the latest
    assert (predict(channel, label="stable"), predict(channel, label="canary")) == (1, 2)
    assert (rest_version(rest, "stable"), rest_version(rest, "canary")) == (1, 2)
    body = json.dumps({"signature_name": SERVING_IMAGE_SIGNATURE, "instances": [{"b64": ""}]})
    request = urllib.request.Request(
        f"{rest}/v1/models/{DEFAULT_MODEL_NAME}/labels/stable:predict", body.encode()
    )
    with pytest.raises(urllib.error.HTTPError) as refused:  # an empty picture: the label resolved
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400 and "not a PNG" in json.load(refused.value)["error"]
    with pytest.raises(grpc.RpcError) as unknown:
        predict(channel, label="beta")
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert unknown.value.details() == "Unrecognized servable version label: beta"


def test_each_model_of_the_config_is_served_with_its_own_status(server):
    channel = server["channel"]
    assert predict(channel, OTHER_MODEL) == 1
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    status = models.GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": OTHER_MODEL}), timeout=30
    )
    assert [(s.version, s.state) for s in status.model_version_status] == [(1, 30)]  # AVAILABLE
    with pytest.raises(grpc.RpcError) as missing:
        predict(channel, "no_such_model")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert "Servable not found for request: Latest(no_such_model)" in missing.value.details()


def test_a_canary_rollout_and_a_roll_back_by_the_config_file_and_by_rpc(server, bases):
    """Edit the file: stable moves to the canary's version 2; a config giving a label to a
    version not on disk, and one that does not parse, are refused and stable stays at 2; then
    HandleReloadConfigRequest rolls stable back to 1."""
    channel, config = server["channel"], server["config"]
    write_config(config, config_text(bases, {"stable": 2, "canary": 2}))
    wait_for(lambda: predict(channel, label="stable") == 2)
    write_config(config, config_text(bases, {"stable": 9}))
    wait_for(lambda: "Request to assign label to version 9" in server["log"].read_text())
    write_config(config, "model_config_list { config { name: ")
    wait_for(lambda: server["log"].read_text().count("the running configuration stays") == 2)
    assert f"{config} line 1:36 : '': Expected string" in server["log"].read_text()
    assert predict(channel, label="stable") == 2 and predict(channel, label="canary") == 2

    models = model_service_pb2_grpc.ModelServiceStub(channel)
    models.HandleReloadConfigRequest(reload_request(bases, {"stable": 1, "canary": 2}), timeout=60)
    assert predict(channel, label="stable") == 1
    with pytest.raises(grpc.RpcError) as refused:
        models.HandleReloadConfigRequest(reload_request(bases, {"stable": 9}), timeout=60)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert predict(channel, label="stable") == 1


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
