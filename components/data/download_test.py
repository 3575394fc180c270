"""fetch_mnist against a local HTTP server on 127.0.0.1 serving IDX files the test writes."""

import functools
import hashlib
import http.server
import socket
import threading
import time

import pytest

from components.data.codecs import read_idx, write_idx
from components.data.download import DownloadError, fetch_mnist, sha256_of
from components.data.sample import load_sample

NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")


@pytest.fixture
def mirror(tmp_path):
    """A folder of IDX files served over HTTP, their checksums, and the requests seen."""
    served = tmp_path / "mirror"
    served.mkdir()
    pixels, labels = load_sample(12, seed=5)
    write_idx(served / NAMES[0], pixels)
    write_idx(served / NAMES[1], labels)
    checksums = {name: hashlib.sha256((served / name).read_bytes()).hexdigest() for name in NAMES}
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(served))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", checksums, requests, (pixels, labels)
    server.shutdown()


def test_downloads_verifies_and_caches(mirror, tmp_path):
    url, checksums, requests, (pixels, labels) = mirror
    target = fetch_mnist(url, tmp_path / "cache", checksums)
    assert (read_idx(target / NAMES[0]) == pixels).all()
    assert (read_idx(target / NAMES[1]) == labels).all()
    assert len(requests) == 2
    fetch_mnist(url, tmp_path / "cache", checksums)
    assert len(requests) == 2  # served from the cache


def test_checksum_mismatch_keeps_nothing(mirror, tmp_path):
    url, checksums, _, _ = mirror
    wrong = {**checksums, NAMES[1]: "0" * 64}
    with pytest.raises(DownloadError, match=f"{NAMES[1]} has SHA-256 .* not kept"):
        fetch_mnist(url, tmp_path / "cache", wrong)
    assert sha256_of(tmp_path / "cache" / NAMES[0]) == checksums[NAMES[0]]
    assert not list((tmp_path / "cache").glob("train-labels*"))


def test_server_down_fails_within_seconds_naming_the_alternatives(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(DownloadError, match="Offline\\? Use DATA=mnist-sample"):
        fetch_mnist(f"http://127.0.0.1:{port}/", tmp_path / "cache", {NAMES[0]: "0" * 64})
    assert time.monotonic() - started < 10
