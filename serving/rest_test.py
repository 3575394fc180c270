"""TF Serving's REST API and Prometheus metrics over real HTTP, beside gRPC on the same core."""

import base64
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from prometheus_client.parser import text_string_to_metric_families
from tensorflow_serving.apis.prediction_log_pb2 import PredictionLog

from components.data.codecs import encode_png
from components.data.sample import load_sample, make_example
from pipeline.settings import PROJECT_ROOT
from serving.client import RestClient
from serving.core import ServingCore
from serving.corrections import CORRECTIONS_FILE, Corrections, read_corrections
from serving.grpc_client import ServingClient
from serving.limits import Limits
from serving.metrics import LOAD_ATTEMPTS, REQUEST_COUNT, REQUEST_LATENCY, Metrics
from serving.model_registry import ModelRegistry
from serving.model_store import VersionedModel
from serving.request_log import RequestLog, RequestLogSettings, log_files
from serving.rest import MAX_BODY_BYTES, RestSettings, create_rest_server
from serving.server import create_server
from trainer.features import (
    CLASS_ID_OUTPUT,
    CLASS_NAME_OUTPUT,
    DEFAULT_MODEL_NAME,
    IMAGE_PROFILE_ASSET,
    IMAGES_INPUT,
    PHOTOS,
    PROBABILITIES_OUTPUT,
    SERVING_DEFAULT_SIGNATURE,
    SERVING_IMAGE_SIGNATURE,
    ImageProfile,
)

MODEL = f"/v1/models/{DEFAULT_MODEL_NAME}"


@pytest.fixture(scope="module")
def servers(tmp_path_factory, trained_model_dir):
    """gRPC and REST on ephemeral ports over one core, as `make serve` runs them."""
    base = tmp_path_factory.mktemp("rest") / DEFAULT_MODEL_NAME
    shutil.copytree(trained_model_dir, base)
    metrics = Metrics()
    model = VersionedModel(
        DEFAULT_MODEL_NAME, base, on_load=lambda path, ok, _: metrics.record_load(str(path), ok)
    )
    model.start()
    core = ServingCore(ModelRegistry.of(model), Limits(), metrics)
    grpc_server, grpc_port = create_server(core, "127.0.0.1:0")
    rest = create_rest_server(core, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{rest.port}", f"127.0.0.1:{grpc_port}", core
    rest.stop()
    grpc_server.stop(grace=None)
    model.stop()


@pytest.fixture(scope="module")
def pngs():
    pixels, labels = load_sample(5000, seed=2)
    return [encode_png(p) for p in pixels[4990:]], labels[4990:]


def call(url: str, body: dict | bytes | None = None) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


def test_status_and_metadata_as_tf_serving_writes_them(servers):
    rest, *_ = servers
    assert call(rest + MODEL) == (
        200,
        {
            "model_version_status": [
                {
                    "version": "1",
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        },
    )
    assert call(rest + MODEL + "/versions/1")[0] == 200
    status, metadata = call(rest + MODEL + "/metadata")
    assert status == 200 and metadata["model_spec"]["version"] == "1"
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert set(signatures[SERVING_IMAGE_SIGNATURE]["inputs"]) == {IMAGES_INPUT}
    assert PROBABILITIES_OUTPUT in signatures[SERVING_DEFAULT_SIGNATURE]["outputs"]


def test_rows_and_columns_answer_as_grpc_does(servers, pngs):
    rest, target, _ = servers
    images, _ = pngs
    with ServingClient(target) as client:
        expected = client.predict_images(images)
    status, rows = call(
        rest + MODEL + ":predict",
        {"signature_name": SERVING_IMAGE_SIGNATURE, "instances": [b64(p) for p in images]},
    )
    assert status == 200 and len(rows["predictions"]) == len(images)
    assert [row[CLASS_ID_OUTPUT] for row in rows["predictions"]] == expected.class_ids.tolist()
    np.testing.assert_allclose(
        [row[PROBABILITIES_OUTPUT] for row in rows["predictions"]],
        expected.probabilities,
        rtol=1e-5,
    )
    assert rows["predictions"][0][CLASS_NAME_OUTPUT] == expected.class_names[0]
    status, columns = call(
        rest + MODEL + "/versions/1:predict",
        {
            "signature_name": SERVING_IMAGE_SIGNATURE,
            "inputs": {IMAGES_INPUT: [b64(p) for p in images]},
        },
    )
    assert status == 200 and columns["outputs"][CLASS_ID_OUTPUT] == expected.class_ids.tolist()
    examples = [b64(make_example(p, 0, "0").SerializeToString()) for p in images]
    status, by_example = call(rest + MODEL + ":predict", {"instances": examples})
    assert [
        row[CLASS_ID_OUTPUT] for row in by_example["predictions"]
    ] == expected.class_ids.tolist()


@pytest.mark.parametrize(
    ("path", "body", "code", "words"),
    [
        (":predict", b"{not json", 400, "JSON Parse error"),
        (":predict", {"instances": [], "inputs": []}, 400, "exactly one of"),
        (":predict", {"instances": [{"b64": "***"}]}, 400, "not valid base64"),
        (":predict", {"instances": [7]}, 400, "must be a string"),
        (":predict", {"instances": [{"b64": ""}] * 1025}, 400, "over the limit of 1024"),
        ("/versions/9:predict", {"instances": [{"b64": ""}]}, 404, "Specific(mnist_cnn, 9)"),
        ("/labels/canary:predict", {"instances": [{"b64": ""}]}, 400, "label: canary"),
        ("/labels/canary/metadata", None, 400, "Unrecognized servable version label"),
        ("/versions/9", None, 404, "Could not find version 9"),
        (":classify", {"instances": []}, 400, "Unsupported verb"),
    ],
)
def test_bad_requests_get_tf_servings_http_codes_and_an_error(servers, path, body, code, words):
    rest, *_ = servers
    status, answer = call(rest + MODEL + path, body)
    assert status == code and words in answer["error"], answer
    assert call(rest + "/v1/models/other")[0] == 404


def test_metrics_count_requests_by_status_and_entrypoint_in_prometheus_text(servers, pngs):
    rest, target, _ = servers
    call(rest + MODEL + ":predict", {"instances": [b64(pngs[0][0])]})
    call(rest + MODEL + ":predict", {"instances": [b64(b"no image")]})
    with ServingClient(target) as client:
        client.predict_images(pngs[0][:1])
    with urllib.request.urlopen(rest + "/monitoring/prometheus/metrics", timeout=30) as response:
        families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
    counts = {
        s.labels["status"]: s.value
        for s in families[REQUEST_COUNT].samples
        if s.labels["model_name"] == DEFAULT_MODEL_NAME
    }
    assert counts["OK"] >= 2 and counts["INVALID_ARGUMENT"] >= 1
    latency = {
        s.labels["entrypoint"]: s.value
        for s in families[REQUEST_LATENCY].samples
        if s.name.endswith("_count")
    }
    assert latency["REST"] >= 2 and latency["GRPC"] >= 1
    loads = [s for s in families[LOAD_ATTEMPTS].samples if s.labels["status"] == "success"]
    assert loads and loads[0].labels["model_path"].endswith("/1")


def test_rest_client_answers_as_the_grpc_client(servers, pngs):
    rest, target, _ = servers
    images, _ = pngs
    with ServingClient(target) as grpc_client, RestClient(rest) as rest_client:
        by_grpc, by_rest = grpc_client.predict_images(images), rest_client.predict_images(images)
        assert by_rest.class_names == by_grpc.class_names
        np.testing.assert_allclose(by_rest.confidences, by_grpc.confidences, rtol=1e-5)
        assert rest_client.metadata() == grpc_client.metadata()
        assert rest_client.status() == grpc_client.status()


def test_cli_talks_rest(servers, pngs, tmp_path):
    rest, *_ = servers
    (tmp_path / "digit.png").write_bytes(pngs[0][0])
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "serving.client",
            "predict",
            str(tmp_path),
            "--rest",
            "--target",
            rest,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.startswith(f"{tmp_path / 'digit.png'}\t")


def test_the_client_command_line_starts_without_tensorflow():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, serving.client; print('tensorflow' in sys.modules)"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "False"  # --help and --rest stay fast


def raw_exchange(port: int, request: bytes, timeout_s: float = 10.0) -> bytes:
    """What the server answers to `request`, sent as is, until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as connection:
        connection.sendall(request)
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except ConnectionResetError:  # closed with bytes of ours unread
            pass
        return answer


def closed_by_server(connection: socket.socket) -> bool:
    """Whether the server has closed `connection` (after any answer, read to its end)."""
    connection.settimeout(0.5)
    try:
        while connection.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def post(path: str, body: bytes, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: test", *headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


DEEP = b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
SIGNATURE_LIST = b'{"signature_name": ["serving_image"], "instances": []}'


@pytest.mark.parametrize(
    ("request_bytes", "words"),
    [
        (post(MODEL + ":predict", DEEP, f"Content-Length: {len(DEEP)}"), b"nested too deeply"),
        (
            post(MODEL + ":predict", SIGNATURE_LIST, f"Content-Length: {len(SIGNATURE_LIST)}"),
            b"'signature_name' must be a string",
        ),
        (post(MODEL + ":predict", b"{}", "Content-Length: two"), b""),
        (post(MODEL + ":predict", b"{}", "Content-Length: -2"), b""),
        (post(MODEL + ":predict", b"{}", "Content-Length: 2, 3"), b""),
        (post(MODEL + ":predict", b"{}", "Content-Length: \xb2"), b""),  # a superscript two
        (post(MODEL + ":predict", b"{}", "Content-Length: " + "9" * 5000), b""),
        (post(MODEL + ":predict", b"", f"Content-Length: {10**12}"), b"over the limit"),
        (post(MODEL + ":predict", b"zz\r\n", "Transfer-Encoding: chunked"), b""),
        (b"GET / HTTP/1.1\r\nX: " + b"y" * 100_000 + b"\r\n\r\n", None),
    ],
    ids=[
        "deep-json",
        "signature-list",
        "length-text",
        "length-negative",
        "length-unequal",
        "length-superscript",
        "length-5000-digits",
        "length-huge",
        "chunk-garbage",
        "header-huge",
    ],
)
def test_hostile_requests_get_a_400_at_once_and_the_server_keeps_serving(
    servers, request_bytes, words
):
    rest, *_ = servers
    port = int(rest.rsplit(":", 1)[1])
    answer = raw_exchange(port, request_bytes)
    if words is None:  # headers over 64 KB: the connection is closed unanswered
        assert answer == b""
    else:
        assert answer.startswith(b"HTTP/1.1 400") and words in answer, answer[:300]
    assert call(rest + MODEL)[0] == 200


def test_a_chunked_body_is_read_and_bounded(servers, pngs):
    rest, *_ = servers
    port = int(rest.rsplit(":", 1)[1])
    body = json.dumps(
        {"signature_name": SERVING_IMAGE_SIGNATURE, "instances": [b64(pngs[0][0])]}
    ).encode()
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 100]), body[i : i + 100])
        for i in range(0, len(body), 100)
    )
    answer = raw_exchange(
        port, post(MODEL + ":predict", chunks + b"0\r\n\r\n", "Transfer-Encoding: chunked")
    )
    assert answer.startswith(b"HTTP/1.1 200") and b"predictions" in answer
    too_long = b"%x\r\n" % (MAX_BODY_BYTES + 1)
    answer = raw_exchange(port, post(MODEL + ":predict", too_long, "Transfer-Encoding: chunked"))
    assert answer.startswith(b"HTTP/1.1 400")


def test_a_flood_of_silent_connections_holds_no_threads_and_locks_no_client_out(servers):
    """300 connections against a cap of 40: half send headers announcing a body and then one
    byte, half send nothing. Threads stay bounded, a real client is answered throughout, the
    oldest silent connections make room, and every silent one is closed within the timeouts."""
    _, _, core = servers
    settings = RestSettings(max_connections=40, idle_timeout_s=1.0, body_timeout_s=1.0, workers=2)
    rest = create_rest_server(core, "127.0.0.1", 0, settings)
    threads_before = threading.active_count()
    flood = []
    try:
        for index in range(300):
            connection = socket.create_connection(("127.0.0.1", rest.port), timeout=10)
            if index % 2:
                connection.sendall(post(MODEL + ":predict", b"{", "Content-Length: 1000"))
            flood.append(connection)
            if index % 50 == 0:
                assert call(f"http://127.0.0.1:{rest.port}{MODEL}")[0] == 200
                assert rest.open_connections() <= settings.max_connections
        assert threading.active_count() <= threads_before + settings.workers
        assert closed_by_server(flood[0])  # the oldest silent connection made room
        time.sleep(settings.idle_timeout_s + settings.body_timeout_s + 0.5)
        assert all(closed_by_server(connection) for connection in flood)
        assert rest.open_connections() == 0
    finally:
        for connection in flood:
            connection.close()
        rest.stop()


def test_a_client_that_leaves_before_its_answer_costs_no_error(servers, pngs, caplog):
    rest, *_ = servers
    port = int(rest.rsplit(":", 1)[1])
    body = json.dumps(
        {"signature_name": SERVING_IMAGE_SIGNATURE, "instances": [b64(pngs[0][0])] * 256}
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(post(MODEL + ":predict", body, f"Content-Length: {len(body)}"))
    time.sleep(2)  # the answer is computed for a client that is gone
    assert call(rest + MODEL)[0] == 200
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text


def test_stop_lets_requests_in_flight_finish_and_refuses_new_connections(servers, pngs):
    _, _, core = servers
    rest = create_rest_server(core, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{rest.port}{MODEL}:predict"
    body = {"signature_name": SERVING_IMAGE_SIGNATURE, "instances": [b64(pngs[0][0])] * 1024}
    answers = []
    sender = threading.Thread(target=lambda: answers.append(call(url, body)))
    sender.start()
    time.sleep(0.3)  # sent, being answered
    rest.stop(drain_s=60)
    sender.join()
    assert answers[0][0] == 200 and len(answers[0][1]["predictions"]) == 1024
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", rest.port), timeout=5)


def test_requests_answered_over_grpc_and_rest_are_logged_as_prediction_logs(
    tmp_path, servers, pngs
):
    _, _, shared = servers
    request_log = RequestLog(tmp_path, DEFAULT_MODEL_NAME, RequestLogSettings(), Metrics())
    core = ServingCore(shared.models, Limits(), Metrics(), request_log)
    grpc_server, grpc_port = create_server(core, "127.0.0.1:0")
    rest = create_rest_server(core, "127.0.0.1", 0)
    images, _ = pngs
    try:
        with ServingClient(f"127.0.0.1:{grpc_port}") as grpc_client:
            grpc_client.predict_images(images[:2])
        with RestClient(f"127.0.0.1:{rest.port}") as rest_client:
            rest_client.predict_images(images[2:3])
    finally:
        rest.stop()
        grpc_server.stop(grace=None)
        request_log.close()
    files = [str(path) for path in log_files(tmp_path)]
    logged = [PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files)]
    assert [len(log.predict_log.request.inputs[IMAGES_INPUT].string_val) for log in logged] == [
        2,
        1,
    ]
    assert {log.log_metadata.model_spec.version.value for log in logged} == {1}
    assert logged[1].predict_log.request.inputs[IMAGES_INPUT].string_val[0] == images[2]


def test_answers_carry_a_request_id_that_a_correction_names(servers, pngs, tmp_path):
    rest_url, grpc_target, core = servers
    url = f"{rest_url}/v1/models/{DEFAULT_MODEL_NAME}:correct"
    assert RestClient(rest_url).predict_images(pngs[0][:1]).request_id is None  # none kept
    status, refused = call(url, {"request_id": "feed", "class_name": "7"})
    assert status == 400 and "start it with --request_log_dir" in refused["error"]
    core.corrections = Corrections(tmp_path)  # as --request_log_dir starts it
    try:
        by_rest = RestClient(rest_url).predict_images(pngs[0][:2])
        with ServingClient(grpc_target) as client:
            by_grpc = client.predict_images(pngs[0][:1])
        assert None not in (by_rest.request_id, by_grpc.request_id)
        assert by_rest.request_id != by_grpc.request_id
        assert RestClient(rest_url).correct(by_rest.request_id, "7", index=1) == {
            "request_id": by_rest.request_id,
            "index": 1,
            "served_class_name": by_rest.class_names[1],
            "class_name": "7",
            "model_version": 1,
        }
        corrected = subprocess.run(  # the client's command line, as a user types it
            [sys.executable, "-m", "serving.client", "correct", "--target", rest_url[7:]]
            + ["--request_id", by_grpc.request_id, "--class_name", "3"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
        )
        assert corrected.returncode == 0, corrected.stderr
        assert json.loads(corrected.stdout)["class_name"] == "3"
        assert call(url, {"request_id": by_grpc.request_id, "class_id": 4})[1]["class_name"] == "4"
        for body, message in (
            ({"request_id": "feed", "class_name": "7"}, "Unknown request id 'feed'"),
            ({"request_id": by_rest.request_id, "index": 5, "class_name": "7"}, "no index 5"),
            ({"request_id": by_rest.request_id, "class_name": "seven"}, "not one of the model's"),
            ({"request_id": by_rest.request_id, "class_id": 10}, "No class id 10"),
            ({"request_id": by_rest.request_id}, "A correction is"),
        ):
            status, refused = call(url, body)
            assert (status, message in refused["error"]) == (400, True), refused
    finally:
        core.corrections = None
    written, _ = read_corrections(tmp_path / CORRECTIONS_FILE)
    assert [(c.request_id, c.class_name) for c in written] == [
        (by_rest.request_id, "7"),
        (by_grpc.request_id, "3"),
        (by_grpc.request_id, "4"),
    ]
    assert written[0].image == pngs[0][1]


def test_the_page_is_headed_for_what_the_served_model_classifies(servers, tmp_path):
    url, _, _ = servers
    with urllib.request.urlopen(url + "/", timeout=30) as page:
        assert "<h1>Draw a digit</h1>" in page.read().decode()
    base = tmp_path / DEFAULT_MODEL_NAME  # the same model, its profile asset saying photos
    shutil.copytree(servers[2].models.model(DEFAULT_MODEL_NAME).base_path, base)
    (base / "1" / "assets" / IMAGE_PROFILE_ASSET).write_text(
        ImageProfile(PHOTOS, 64, 64, 3).to_json()
    )
    model = VersionedModel(DEFAULT_MODEL_NAME, base)
    model.start()
    rest = create_rest_server(ServingCore(ModelRegistry.of(model)), "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{rest.port}/", timeout=30) as page:
            text = page.read().decode()
    finally:
        rest.stop()
        model.stop()
    assert "<h1>Classify a picture</h1>" in text and "Draw a digit" not in text
