"""How much work one request may ask for, checked before anything is decoded, and the gRPC
message size that the server and the client share."""

import dataclasses
import struct

# gRPC's default of 4 MB holds about 6,000 PNG digits; a batch of full MNIST is larger.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
GRPC_MESSAGE_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


class LimitError(ValueError):
    """A request over a limit or malformed; the message names the input, index and limit."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """Defaults: a batch as large as TF Serving's batching examples use, a phone photo per image
    (12 megapixels fit), and a request's pictures at most 64 megapixels in all (about 64 MB
    decoded as greyscale)."""

    max_batch_size: int = 1024
    max_image_bytes: int = 8 * 1024 * 1024
    max_image_pixels: int = 16_000_000
    max_request_pixels: int = 64_000_000


def _png(data: bytes) -> tuple[int, int] | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


def _gif(data: bytes) -> tuple[int, int] | None:
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    return None


def _bmp(data: bytes) -> tuple[int, int] | None:
    if data.startswith(b"BM") and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)
    return None


# JPEG start-of-frame markers (all but DHT C4, JPG C8 and DAC CC), which hold the size.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(data: bytes) -> tuple[int, int] | None:
    if not data.startswith(b"\xff\xd8"):
        return None
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        length = struct.unpack(">H", data[at + 2 : at + 4])[0]
        if marker in _SOF and at + 9 <= len(data):
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + length
    return None


HEADERS = {"png": _png, "jpeg": _jpeg, "gif": _gif, "bmp": _bmp}


def image_header(data: bytes) -> tuple[str, tuple[int, int]] | None:
    """The format and (width, height) from a PNG, JPEG, GIF or BMP header, without decoding;
    None for other bytes."""
    for image_format, read in HEADERS.items():
        size = read(data)
        if size:
            return image_format, size
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, GIF or BMP header, without decoding; None otherwise."""
    header = image_header(data)
    return header[1] if header else None


def check_images(input_name: str, images: list[bytes], limits: Limits) -> list[int]:
    """The pixels of each picture; refuses, naming the input, index and limit, a batch or an
    image over the limits, or bytes that are no image of a format the model decodes."""
    if len(images) > limits.max_batch_size:
        raise LimitError(
            f"Input {input_name!r} holds {len(images)} values, over the limit of "
            f"{limits.max_batch_size} per request (--max_batch_size)"
        )
    total, sizes = 0, []
    for index, data in enumerate(images):
        where = f"{input_name}[{index}]"
        if len(data) > limits.max_image_bytes:
            raise LimitError(
                f"{where} is {len(data)} bytes, over the limit of {limits.max_image_bytes} "
                "(--max_image_bytes)"
            )
        size = image_size(data)
        if size is None:
            raise LimitError(f"{where} is not a PNG, JPEG, GIF or BMP image")
        pixels = size[0] * size[1]
        if pixels > limits.max_image_pixels:
            raise LimitError(
                f"{where} is {size[0]}x{size[1]} pixels, over the limit of "
                f"{limits.max_image_pixels} (--max_image_pixels)"
            )
        total += pixels
        sizes.append(pixels)
        if total > limits.max_request_pixels:
            raise LimitError(
                f"Input {input_name!r} holds over {limits.max_request_pixels} pixels in all "
                f"by {where} (--max_request_pixels)"
            )
    return sizes
