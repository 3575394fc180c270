"""The full MNIST data set (70,000 digits): MNIST's four official IDX files from the standard
public mirror, verified against their SHA-256 and cached in the user's cache folder."""

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from components.data.atomic import replaced_atomically

SHA256 = {
    "train-images-idx3-ubyte.gz": (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
    ),
    "train-labels-idx1-ubyte.gz": (
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
    ),
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
ALTERNATIVES = (
    "DATA=mnist-sample (the offline default), or DATA=<folder> with class sub-folders of "
    "images or with MNIST IDX files"
)


class DownloadError(RuntimeError):
    """MNIST could not be fetched or verified; the message says what to do instead."""


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/mnist-tfx/mnist`, by default `~/.cache/mnist-tfx/mnist`."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist-tfx" / "mnist"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_mnist(
    mirror: str,
    target: Path | None = None,
    checksums: dict[str, str] = SHA256,
    timeout_s: float = 10.0,
) -> Path:
    """The folder holding the four verified files; downloads those not cached yet. A file is
    kept only once its checksum matches."""
    target = target or cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    for name, expected in checksums.items():
        path = target / name
        if path.is_file() and sha256_of(path) == expected:
            continue
        url = mirror + name
        with replaced_atomically(path) as partial:
            try:
                with urllib.request.urlopen(url, timeout=timeout_s) as response:
                    partial.write_bytes(response.read())
            except (urllib.error.URLError, OSError) as error:
                raise DownloadError(
                    f"Could not download {url} ({error}). Offline? Use {ALTERNATIVES}."
                ) from error
            actual = sha256_of(partial)
            if actual != expected:
                raise DownloadError(
                    f"{url} has SHA-256 {actual}, expected {expected}: not kept. Retry later, or "
                    f"use {ALTERNATIVES}."
                )
        print(f"Downloaded and verified {url}")
    return target
