"""The image codecs every part shares: MNIST's IDX files (`*-images-idx3-ubyte`,
`*-labels-idx1-ubyte`, gzipped or not) and PNG. Free of TensorFlow, so that clients stay light."""

import gzip
import io
from pathlib import Path

import numpy as np
from PIL import Image

_DTYPES = {0x08: np.uint8}


def read_idx(path: Path) -> np.ndarray:
    """The array in an IDX file: uint8 images [N, rows, cols] or labels [N]."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        data = stream.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    dims = data[3]
    if len(data) < 4 + 4 * dims:
        raise ValueError(f"{path} ends inside its IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    body = np.frombuffer(data, dtype=_DTYPES[data[2]], offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {body.size} values, its header announces shape {shape}")
    return body.reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Writes uint8 `array` as an IDX file, gzipped when `path` ends in .gz."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


def is_idx_images(path: Path) -> bool:
    return "idx3-ubyte" in path.name


def encode_png(pixels: np.ndarray) -> bytes:
    """A grayscale uint8 image as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()
