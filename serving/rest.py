"""TF Serving's REST API (https://www.tensorflow.org/tfx/serving/api_rest) on the same models:

    GET  /v1/models/{name}[/versions/{v}]                   status
    GET  /v1/models/{name}[/versions/{v}]/metadata          signatures
    POST /v1/models/{name}[/versions/{v}]:predict           {"instances": [...]} or {"inputs": ...}
    GET  /monitoring/prometheus/metrics                      metrics
    GET  /                                                   a page to draw a digit on

Binary strings travel as {"b64": "..."}; answers are TF Serving's (`predictions` for rows,
`outputs` for columns), errors {"error": "..."} with TF Serving's HTTP codes.
"""

import base64
import binascii
import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import numpy as np
from google.protobuf import json_format

from serving.core import ServingCore, ServingError, invalid
from serving.limits import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

REST = "REST"
PAGE = Path(__file__).with_name("page.html")
METRICS_PATH = "/monitoring/prometheus/metrics"
# Base64 in JSON makes a request a third larger than the gRPC message it stands for.
MAX_BODY_BYTES = MAX_MESSAGE_BYTES * 4 // 3 + 1024 * 1024
MODEL_PATH = re.compile(
    r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>[a-z]+))?"
)
# TF Serving's mapping of status codes to HTTP (model_servers/http_server.cc).
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def decode_value(where: str, value) -> bytes:
    """A string input value: {"b64": ...} for binary data, or text."""
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except binascii.Error:
            raise invalid(f"{where} is not valid base64") from None
    if isinstance(value, str):
        return value.encode()
    raise invalid(f'{where} must be a string or {{"b64": "..."}}')


def request_inputs(body: dict, input_names: list[str], max_values: int) -> tuple[dict, bool]:
    """({input name: values}, whether the request was in the row format)."""
    if ("instances" in body) == ("inputs" in body):
        raise invalid("The request needs exactly one of 'instances' (rows) or 'inputs' (columns)")
    rows = "instances" in body
    data = body["instances" if rows else "inputs"]
    if rows:
        if not isinstance(data, list):
            raise invalid("'instances' must be a list")
        if len(data) > max_values:
            raise invalid(f"'instances' holds {len(data)} rows, over the limit of {max_values}")
        named = all(isinstance(row, dict) and "b64" not in row for row in data)
        if not named:
            if len(input_names) != 1:
                raise invalid(f"Each instance must name the inputs {input_names}")
            columns = {input_names[0]: data}
        else:
            columns = {name: [row.get(name) for row in data] for name in input_names}
            for index, row in enumerate(data):
                if set(row) != set(input_names):
                    raise invalid(f"instances[{index}] names {sorted(row)}, expected {input_names}")
    else:
        columns = data if isinstance(data, dict) and "b64" not in data else None
        if columns is None:
            if len(input_names) != 1:
                raise invalid(f"'inputs' must name the inputs {input_names}")
            columns = {input_names[0]: data}
        for name, values in columns.items():
            if not isinstance(values, list):
                raise invalid(f"inputs[{name!r}] must be a list")
            if len(values) > max_values:
                raise invalid(
                    f"inputs[{name!r}] holds {len(values)} values, over the limit of {max_values}"
                )
    return {
        name: [decode_value(f"{name}[{i}]", v) for i, v in enumerate(values)]
        for name, values in columns.items()
    }, rows


def json_value(name: str, array: np.ndarray):
    """Numbers as they are; strings as text, or {"b64": ...} for outputs named *_bytes."""
    if array.dtype.kind in "OSU":
        if name.endswith("_bytes"):
            return [{"b64": base64.b64encode(v).decode()} for v in array.tolist()]
        return [v.decode(errors="replace") if isinstance(v, bytes) else v for v in array.tolist()]
    return array.tolist()


def predict_response(outputs: dict[str, np.ndarray], rows: bool) -> dict:
    values = {name: json_value(name, array) for name, array in sorted(outputs.items())}
    if not rows:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    count = len(next(iter(values.values())))
    return {"predictions": [{name: v[i] for name, v in values.items()} for i in range(count)]}


class RestServer:
    """A threading HTTP server; `stop` refuses new connections and waits for those in flight."""

    def __init__(self, core: ServingCore, host: str, port: int):
        self.core = core
        self._in_flight = 0
        self._idle = threading.Condition()
        self.httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="rest")
        self._thread.start()

    def _handler_class(self):
        server = self

        class Handler(RestHandler):
            rest = server

        return Handler

    def enter(self) -> None:
        with self._idle:
            self._in_flight += 1

    def leave(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def stop(self, drain_s: float = 0.0) -> None:
        self.httpd.shutdown()
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=drain_s)
        self.httpd.server_close()


class RestHandler(BaseHTTPRequestHandler):
    rest: RestServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # noqa: A002 (the base class's name)
        """Quiet: metrics count the requests."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def _serve(self, method: str) -> None:
        self.rest.enter()  # in flight until the answer is written: a drain waits for it
        try:
            status, content_type, body = self._route(method)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            self.rest.leave()

    def _route(self, method: str) -> tuple[int, str, bytes]:
        core = self.rest.core
        path = self.path.split("?")[0]
        if method == "GET" and path in ("/", "/index.html"):
            page = PAGE.read_text().replace("{{MODEL_NAME}}", core.model.name)
            return 200, "text/html; charset=utf-8", page.encode()
        if method == "GET" and path == METRICS_PATH:
            return 200, "text/plain; version=0.0.4", core.metrics.text().encode()
        try:
            answer = self._api(method, path)
        except ServingError as error:
            return self._json(HTTP_STATUS.get(error.code, 500), {"error": str(error)})
        except Exception as error:  # noqa: BLE001 (one log line, never a crash)
            log.error("REST request failed: %s: %s", type(error).__name__, error)
            return self._json(500, {"error": f"{type(error).__name__} while serving"})
        return self._json(200, answer)

    def _json(self, status: int, document: dict) -> tuple[int, str, bytes]:
        return status, "application/json", json.dumps(document).encode()

    def _api(self, method: str, path: str) -> dict:
        core = self.rest.core
        match = MODEL_PATH.fullmatch(path)
        if not match or (method == "POST") != bool(match["verb"]):
            self._discard_body()
            raise invalid(f"Malformed request: {method} {path}")
        name, version = match["name"], int(match["version"]) if match["version"] else None
        if match["metadata"]:
            return json_format.MessageToDict(
                core.metadata(name, version), preserving_proto_field_name=True
            )
        if not match["verb"]:
            return json_format.MessageToDict(
                core.status(name, version),
                preserving_proto_field_name=True,
                including_default_value_fields=True,
            )
        if match["verb"] != "predict":
            self._discard_body()
            raise invalid(f"Unsupported verb {match['verb']!r}: this server serves predict")
        return core.measured("predict", REST, lambda: self._predict(name, version))

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the body stays unread
            raise invalid(f"Request body of {length} bytes is over the limit of {MAX_BODY_BYTES}")
        return self.rfile.read(length)

    def _discard_body(self) -> None:
        try:
            self._read_body()
        except ServingError:
            pass

    def _predict(self, name: str, version: int | None) -> dict:
        body = self._read_body()
        try:
            document = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise invalid(f"JSON Parse error: {error}") from None
        if not isinstance(document, dict):
            raise invalid("The request body must be a JSON object")
        core = self.rest.core
        loaded = core.version(name, version)
        signature_name = document.get("signature_name", "")
        _, signature = core.signature(loaded, signature_name)
        input_names = sorted(signature.structured_input_signature[1])
        inputs, rows = request_inputs(document, input_names, core.limits.max_batch_size)
        _, _, outputs = core.predict(name, version, signature_name, inputs)
        return predict_response(outputs, rows)


def create_rest_server(core: ServingCore, host: str, port: int) -> RestServer:
    """A started REST server (port 0: an ephemeral one, see `.port`)."""
    return RestServer(core, host, port)
