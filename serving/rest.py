"""TF Serving's REST API (https://www.tensorflow.org/tfx/serving/api_rest) on the same models:

    GET  /v1/models/{name}[/versions/{v}]                   status
    GET  /v1/models/{name}[/versions/{v}]/metadata          signatures
    POST /v1/models/{name}[/versions/{v}]:predict           {"instances": [...]} or {"inputs": ...}
    POST /v1/models/{name}:correct                           a correction (serving/corrections.py)
    GET  /monitoring/prometheus/metrics                      metrics
    GET  /                                                   a page to draw a digit on

`/labels/{label}` in place of `/versions/{v}` names a version by its label.

Binary strings travel as {"b64": "..."}; answers are TF Serving's (`predictions` for rows,
`outputs` for columns), errors {"error": "..."} with TF Serving's HTTP codes.
"""

import asyncio
import base64
import binascii
import dataclasses
import json
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote

import grpc
import numpy as np
import tornado.httpserver
import tornado.iostream
import tornado.netutil
import tornado.web
from google.protobuf import json_format

from serving.core import ServingCore, ServingError, invalid
from serving.limits import MAX_MESSAGE_BYTES
from trainer.features import DIGITS, REQUEST_ID_HEADER

log = logging.getLogger(__name__)

REST = "REST"
PAGE = Path(__file__).with_name("page.html")
METRICS_PATH = "/monitoring/prometheus/metrics"
# Base64 in JSON makes a request a third larger than the gRPC message it stands for.
MAX_BODY_BYTES = MAX_MESSAGE_BYTES * 4 // 3 + 1024 * 1024
MODEL_PATH = re.compile(
    r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
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


def page_html(core: ServingCore) -> str:
    """The page, headed for what the served model classifies (its image profile)."""
    heading = "Draw a digit" if core.image_profile().name == DIGITS else "Classify a picture"
    page = PAGE.read_text().replace("{{MODEL_NAME}}", core.logged_model)
    return page.replace("{{HEADING}}", heading)


@dataclasses.dataclass(frozen=True)
class RestSettings:
    """How many connections, bytes and threads the REST port may hold, and for how long a
    silent connection.

    A connection costs a socket and a few kilobytes, not a thread: one event loop reads and
    writes every connection, and `workers` threads run the requests. At `max_connections` a new
    connection makes room by closing the oldest one that has not sent its headers, else the
    oldest still sending its body; one being answered is never closed, so a flood of silent
    connections cannot lock out a real client. Bodies being received may hold at most
    `max_receiving_bytes` in all (each at most MAX_BODY_BYTES); more is refused with a 503. A
    connection that sends no request for `idle_timeout_s` (or no end of its headers) is closed,
    and so is one whose body has not arrived `body_timeout_s` after its headers: long enough
    for the largest request at 3.1 MB/s."""

    max_connections: int = 512
    max_receiving_bytes: int = 1024**3
    idle_timeout_s: float = 15.0
    body_timeout_s: float = 30.0
    workers: int = 8


# A connection's state, in the order in which connections are closed to make room.
WAITING, RECEIVING, ANSWERING = 0, 1, 2


class OpenConnections:
    """The REST port's open connections, oldest first, each with its state.

    Used from the event loop's thread only, so it needs no lock."""

    def __init__(self, cap: int):
        self.cap = cap
        self._state: dict[tornado.iostream.IOStream, int] = {}  # insertion order: oldest first

    def admit(self, stream: tornado.iostream.IOStream) -> bool:
        """Whether `stream` may be served; at the cap, another connection makes room."""
        if len(self._state) >= self.cap:
            waiting = [s for s, state in self._state.items() if state < ANSWERING]
            if not waiting:
                return False
            oldest = min(waiting, key=lambda s: self._state[s])  # min keeps the first of ties
            oldest.close()
            self.forget(oldest)
        self._state[stream] = WAITING
        return True

    def mark(self, stream: tornado.iostream.IOStream, state: int) -> None:
        if stream in self._state:
            self._state[stream] = state

    def forget(self, stream: tornado.iostream.IOStream) -> None:
        self._state.pop(stream, None)

    def __len__(self) -> int:
        return len(self._state)


class CappedHTTPServer(tornado.httpserver.HTTPServer):
    """Tornado's HTTP server with `OpenConnections` deciding whom it serves."""

    connections: OpenConnections

    def handle_stream(self, stream: tornado.iostream.IOStream, address: tuple) -> None:
        if self.connections.admit(stream):
            super().handle_stream(stream, address)
            return
        document = json.dumps({"error": "The server is answering as many connections as it may"})
        refusal = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(document)}\r\nConnection: close\r\n\r\n{document}"
        )
        stream.write(refusal.encode()).add_done_callback(lambda _: stream.close())

    def on_close(self, server_conn) -> None:
        super().on_close(server_conn)
        self.connections.forget(server_conn.stream)


class RestServer:
    """TF Serving's REST API on an event loop of its own thread; requests run on `workers`
    threads. `stop` refuses new connections and waits for the answers in flight."""

    def __init__(self, core: ServingCore, host: str, port: int, settings: RestSettings):
        self.core = core
        self.settings = settings
        self.connections = OpenConnections(settings.max_connections)
        self.executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="rest")
        self.in_flight = 0  # requests whose headers have arrived and whose answer is not sent
        self.receiving_bytes = 0  # bodies held, reserved by their Content-Length
        self.stopping = False
        sockets = tornado.netutil.bind_sockets(port, host)
        self.port = sockets[0].getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="rest")
        self._thread.start()
        self._on_loop(self._listen(sockets))

    def _on_loop(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    async def _listen(self, sockets: list) -> None:
        application = tornado.web.Application(
            [(r".*", RestHandler, {"rest": self})], log_function=lambda _: None
        )
        self._http = CappedHTTPServer(
            application,
            idle_connection_timeout=self.settings.idle_timeout_s,
            body_timeout=self.settings.body_timeout_s,
            max_body_size=MAX_BODY_BYTES,
        )
        self._http.connections = self.connections
        self._http.add_sockets(sockets)

    def open_connections(self) -> int:
        async def count() -> int:
            return len(self.connections)

        return self._on_loop(count())

    async def _drain(self, drain_s: float) -> None:
        self.stopping = True
        self._http.stop()
        deadline = time.monotonic() + drain_s
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await self._http.close_all_connections()

    def stop(self, drain_s: float = 0.0) -> None:
        if self.loop.is_closed():
            return
        self._on_loop(self._drain(drain_s))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()
        self.executor.shutdown(wait=False, cancel_futures=True)


def declared_length(headers) -> int | None:
    """The Content-Length, where it is a plain number (Tornado refuses any other with a 400)."""
    declared = headers.get("Content-Length", "")
    return int(declared) if re.fullmatch(r"[0-9]{1,15}", declared) else None


@tornado.web.stream_request_body
class RestHandler(tornado.web.RequestHandler):
    """One request: headers first (a body over the limits is refused before it is read), then
    the body, then the answer computed on a worker thread."""

    def initialize(self, rest: RestServer) -> None:
        self.rest = rest
        self.body = bytearray()
        self.reserved = 0
        self.counted = False  # in the server's in_flight
        self.answering = False

    def prepare(self) -> None:
        self.rest.in_flight += 1  # until the answer is sent: a drain waits for it
        self.counted = True
        stream = self.request.connection.stream
        self.rest.connections.mark(stream, RECEIVING)
        length = declared_length(self.request.headers) or 0
        if length > MAX_BODY_BYTES:
            self._refuse(
                400, f"Request body of {length} bytes is over the limit of {MAX_BODY_BYTES}"
            )
        elif self.rest.receiving_bytes + length > self.rest.settings.max_receiving_bytes:
            self._refuse(503, "The server is receiving as many request bodies as it may")
        else:
            self._reserve(length)

    def _refuse(self, status: int, message: str) -> None:
        """Answered before the body is read; Tornado then closes the connection."""
        self.set_header("Connection", "close")
        self._send(*self._error(status, message))

    def _reserve(self, count: int) -> None:
        self.reserved += count
        self.rest.receiving_bytes += count

    def data_received(self, chunk: bytes) -> None:
        self.body += chunk
        if len(self.body) > self.reserved:  # a chunked body: reserved as it comes
            self._reserve(len(self.body) - self.reserved)
            if self.rest.receiving_bytes > self.rest.settings.max_receiving_bytes:
                self.request.connection.close()

    def on_finish(self) -> None:
        self._release()

    def on_connection_close(self) -> None:
        self._release()

    def _release(self) -> None:
        """The body's bytes; and the request, unless `_serve` is still sending its answer."""
        self.rest.receiving_bytes -= self.reserved
        self.reserved = 0
        if self.counted and not self.answering:
            self.rest.in_flight -= 1
            self.counted = False

    async def get(self) -> None:
        await self._serve("GET")

    async def post(self) -> None:
        await self._serve("POST")

    def compute_etag(self) -> None:
        return None  # answers are computed afresh each time

    def write_error(self, status_code: int, **kwargs) -> None:
        """Tornado's own refusals (a method other than GET and POST, say) as TF Serving's."""
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": self._reason}))

    async def _serve(self, method: str) -> None:
        stream = self.request.connection.stream
        self.rest.connections.mark(stream, ANSWERING)
        self.answering = True
        try:
            if self.rest.stopping:
                self.set_header("Connection", "close")
                answer = self._error(503, "The server is stopping")
            else:
                answer = await asyncio.get_running_loop().run_in_executor(
                    self.rest.executor, self._route, method, self.request.path, self.body
                )
            await self._send(*answer)
        except tornado.iostream.StreamClosedError:
            pass  # the client left before its answer
        finally:
            self.answering = False
            self._release()  # now that the answer is written
            self.rest.connections.mark(stream, WAITING)

    def _send(self, status: int, content_type: str, body: bytes, headers: dict | None = None):
        self.set_status(status)
        self.set_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.set_header(name, value)
        return self.finish(body)

    def _error(self, status: int, message: str) -> tuple[int, str, bytes]:
        return status, "application/json", json.dumps({"error": message}).encode()

    def _route(self, method: str, path: str, body: bytes) -> tuple:
        """(status, content type, body[, headers]); runs on a worker thread."""
        core = self.rest.core
        if method == "GET" and path in ("/", "/index.html"):
            return 200, "text/html; charset=utf-8", page_html(core).encode()
        if method == "GET" and path == METRICS_PATH:
            return 200, "text/plain; version=0.0.4", core.metrics.text().encode()
        try:
            answer, headers = self._api(method, path, body)
        except ServingError as error:
            return self._error(HTTP_STATUS.get(error.code, 500), str(error))
        except Exception as error:  # noqa: BLE001 (one log line, never a crash)
            log.error("REST request failed: %s: %s", type(error).__name__, error)
            return self._error(500, f"{type(error).__name__} while serving")
        return 200, "application/json", json.dumps(answer).encode(), headers

    def _api(self, method: str, path: str, body: bytes) -> tuple[dict, dict]:
        """(the answer, headers to send with it)."""
        core = self.rest.core
        match = MODEL_PATH.fullmatch(path)
        if not match or (method == "POST") != bool(match["verb"]):
            raise invalid(f"Malformed request: {method} {path}")
        name, version = unquote(match["name"]), int(match["version"]) if match["version"] else None
        label = unquote(match["label"]) if match["label"] else None
        if match["metadata"]:
            metadata = core.metadata(name, version, label)
            return json_format.MessageToDict(metadata, preserving_proto_field_name=True), {}
        if not match["verb"]:
            status = json_format.MessageToDict(
                core.status(name, version),
                preserving_proto_field_name=True,
                including_default_value_fields=True,
            )
            return status, {}
        if match["verb"] == "correct":  # beside TF Serving's API: serving/corrections.py
            return core.correct(name, json_object(body)), {}
        if match["verb"] != "predict":
            raise invalid(f"Unsupported verb {match['verb']!r}: this server serves predict")
        answer, request_id = core.measured(
            name, "predict", REST, lambda: predict(core, name, version, label, body)
        )
        return answer, {REQUEST_ID_HEADER: request_id} if request_id else {}


def json_object(body: bytes) -> dict:
    """A request's JSON body, which must be an object."""
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise invalid(f"JSON Parse error: {error}") from None
    except RecursionError:
        raise invalid("JSON Parse error: nested too deeply") from None
    if not isinstance(document, dict):
        raise invalid("The request body must be a JSON object")
    return document


def predict(
    core: ServingCore, name: str, version: int | None, label: str | None, body: bytes
) -> tuple[dict, str | None]:
    """A `:predict` request's answer, from its JSON body, and its request id."""
    document = json_object(body)
    signature_name = document.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise invalid("'signature_name' must be a string")
    loaded = core.version(name, version, label)
    _, signature = core.signature(loaded, signature_name)
    input_names = sorted(signature.structured_input_signature[1])
    inputs, rows = request_inputs(document, input_names, core.limits.max_batch_size)
    _, outputs, request_id = core.predict(name, loaded, signature_name, inputs)
    return predict_response(outputs, rows), request_id


def create_rest_server(
    core: ServingCore, host: str, port: int, settings: RestSettings = RestSettings()
) -> RestServer:
    """A started REST server (port 0: an ephemeral one, see `.port`)."""
    return RestServer(core, host, port, settings)
