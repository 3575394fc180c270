"""The drawing page in a real browser: headless Chromium, driven over the DevTools protocol
(offline, no driver download), draws a stroke on the canvas and must show what the server's
REST API answers for that picture."""

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import websocket
from PIL import Image

from serving.core import ServingCore
from serving.corrections import CORRECTIONS_FILE, Corrections, read_corrections
from serving.limits import Limits
from serving.metrics import Metrics
from serving.model_registry import ModelRegistry
from serving.model_store import VersionedModel
from serving.rest import create_rest_server
from trainer.features import CLASS_NAME_OUTPUT, DEFAULT_MODEL_NAME, SERVING_IMAGE_SIGNATURE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: `make test` installs Debian's chromium when it runs as root with apt-get",
)


class Browser:
    """One headless Chromium tab, commanded over the DevTools protocol's WebSocket."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        self.process = subprocess.Popen(
            [
                CHROMIUM,
                "--headless=new",
                "--no-sandbox",  # tests run as root in containers
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.is_file() or not port_file.read_text().strip():
            assert time.monotonic() < deadline and self.process.poll() is None, "no Chromium"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as listing:
            page = next(t for t in json.loads(listing.read()) if t["type"] == "page")
        self.socket = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True
        )
        self.next_id = 0

    def command(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:  # events arrive in between; the answer carries our id
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message["result"]

    def evaluate(self, expression: str):
        result = self.command("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 30.0):
        deadline = time.monotonic() + timeout_s
        while not (value := self.evaluate(expression)):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.1)
        return value

    def mouse(self, kind: str, x: float, y: float) -> None:
        self.command(
            "Input.dispatchMouseEvent",
            type=kind,
            x=x,
            y=y,
            button="left",
            buttons=0 if kind == "mouseReleased" else 1,
            clickCount=1,
        )

    def open_page(self, url: str) -> None:
        """The page, once it shows the served version (the fixture's is 1)."""
        self.command("Page.navigate", url=url + "/")
        self.wait_for("document.getElementById('version').textContent === '1'")

    def choose_file(self, path: Path) -> None:
        """As a user picks a file with the page's file input."""
        document = self.command("DOM.getDocument")["root"]["nodeId"]
        chooser = self.command("DOM.querySelector", nodeId=document, selector="#file")
        self.command("DOM.setFileInputFiles", files=[str(path)], nodeId=chooser["nodeId"])

    def close(self) -> None:
        self.socket.close()
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def corrections_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("corrections")


@pytest.fixture(scope="module")
def page_server(tmp_path_factory, trained_model_dir, corrections_dir):
    base = tmp_path_factory.mktemp("page") / DEFAULT_MODEL_NAME
    shutil.copytree(trained_model_dir, base)
    model = VersionedModel(DEFAULT_MODEL_NAME, base)
    model.start()
    corrections = Corrections(corrections_dir)  # as `make serve` keeps them, by the request log
    core = ServingCore(ModelRegistry.of(model), Limits(), Metrics(), corrections=corrections)
    rest = create_rest_server(core, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{rest.port}"
    rest.stop()
    model.stop()


def test_a_stroke_drawn_on_the_page_shows_the_servers_prediction(page_server):
    browser = Browser()
    try:
        browser.command("Page.navigate", url=page_server + "/")
        assert (
            browser.wait_for(
                "document.getElementById('version').textContent !== '?' && "
                "document.getElementById('version').textContent"
            )
            == "1"
        )
        box = browser.evaluate(
            "JSON.stringify(document.getElementById('pad').getBoundingClientRect())"
        )
        box = json.loads(box)
        x = box["left"] + box["width"] / 2
        top, bottom = box["top"] + box["height"] * 0.2, box["top"] + box["height"] * 0.8
        browser.mouse("mousePressed", x, top)
        for step in range(1, 21):  # a vertical stroke: a one
            browser.mouse("mouseMoved", x, top + (bottom - top) * step / 20)
        browser.mouse("mouseReleased", x, bottom)
        shown = browser.wait_for("document.getElementById('answer').textContent")
        drawn = browser.evaluate("document.getElementById('pad').toDataURL('image/png')")
        bars = browser.evaluate("document.querySelectorAll('#bars .bar').length")
        latency = browser.evaluate("document.getElementById('latency').textContent")
    finally:
        browser.close()
    picture = drawn.split(",", 1)[1]
    assert len(base64.b64decode(picture)) > 1000  # the stroke is on the canvas
    prediction = server_prediction(page_server, picture)
    assert shown == prediction[CLASS_NAME_OUTPUT]
    assert bars == len(prediction["probabilities"]) == 10
    assert float(latency) > 0


def server_prediction(page_server: str, picture_b64: str) -> dict:
    """What the REST API answers for one picture through `serving_image`."""
    request = urllib.request.Request(
        f"{page_server}/v1/models/{DEFAULT_MODEL_NAME}:predict",
        data=json.dumps(
            {"signature_name": SERVING_IMAGE_SIGNATURE, "instances": [{"b64": picture_b64}]}
        ).encode(),
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        (prediction,) = json.loads(response.read())["predictions"]
    return prediction


def test_a_file_in_every_advertised_format_shows_the_servers_prediction(
    page_server, digits, tmp_path
):
    """PNG, JPEG, BMP and GIF (the formats the page's help names), chosen with the file input
    as a user would."""
    browser = Browser()
    try:
        browser.open_page(page_server)
        for index, suffix in enumerate(("png", "jpg", "bmp", "gif")):
            path = tmp_path / f"digit.{suffix}"
            Image.fromarray(digits[0][index]).save(path)
            browser.evaluate("document.getElementById('clear').click()")
            browser.choose_file(path)
            browser.wait_for(
                "document.getElementById('answer').textContent || "
                "document.getElementById('error').textContent"
            )
            shown = browser.evaluate("document.getElementById('answer').textContent")
            error = browser.evaluate("document.getElementById('error').textContent")
            picture = base64.b64encode(path.read_bytes()).decode()
            assert (suffix, shown, error) == (
                suffix,
                server_prediction(page_server, picture)[CLASS_NAME_OUTPUT],
                "",
            )
    finally:
        browser.close()


def test_a_wrong_answer_corrected_on_the_page_is_recorded_with_its_picture(
    page_server, corrections_dir, digits, tmp_path
):
    path = tmp_path / "digit.png"
    Image.fromarray(digits[0][5]).save(path)
    browser = Browser()
    try:
        browser.open_page(page_server)
        browser.choose_file(path)
        browser.wait_for("!document.getElementById('correct').hidden")
        served = browser.evaluate("document.getElementById('answer').textContent")
        wrong = "1" if served != "1" else "2"  # say it was another digit than the answer
        browser.evaluate(f"document.querySelectorAll('#choices button')[{wrong}].click()")
        said = browser.wait_for("document.getElementById('corrected').textContent")
    finally:
        browser.close()
    assert said == f"Thank you: recorded as {wrong} (the model said {served})"
    corrections, _ = read_corrections(corrections_dir / CORRECTIONS_FILE)
    assert [(c.class_name, c.served_class_name, c.image) for c in corrections] == [
        (wrong, served, path.read_bytes())
    ]
