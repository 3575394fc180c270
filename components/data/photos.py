"""MNIST digits re-rendered the way people send digits: photos of ink on paper, small digits
off-centre on a web page's canvas, grey scans, drawings on a pad, and a few more. For the
real-world benchmark (`make bench`, on the dev set) and the tests (on the sample).

Each variant takes a digit in MNIST's form (uint8 [28, 28], white on black) and a random
generator, and returns encoded image bytes (PNG or JPEG), as a client would send them.
"""

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

Variant = Callable[[np.ndarray, np.random.Generator], bytes]


def _encode(image: Image.Image, image_format: str = "PNG", quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, quality=quality)
    return buffer.getvalue()


def _ink(digit: np.ndarray, size: int) -> np.ndarray:
    """The digit's ink coverage in [0, 1], enlarged to `size` pixels square."""
    return np.asarray(Image.fromarray(digit).resize((size, size), Image.BICUBIC)) / 255.0


def _place(paper: np.ndarray, ink: np.ndarray, top: int, left: int, ink_value) -> np.ndarray:
    """`paper` with `ink` (coverage) blended in at (top, left) in the colour `ink_value`."""
    out = paper.astype(np.float64).copy()
    region = out[top : top + ink.shape[0], left : left + ink.shape[1]]
    coverage = ink[..., None] if region.ndim == 3 else ink
    region[...] = region * (1 - coverage) + np.asarray(ink_value, dtype=np.float64) * coverage
    return np.clip(out, 0, 255).astype(np.uint8)


def paper_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Dark ink on light, slightly tinted and unevenly lit paper, a 280x280 colour JPEG."""
    side = 280
    size = int(rng.integers(140, 221))
    tint = rng.uniform(0.92, 1.0, size=3)
    light = np.linspace(rng.uniform(-20, 0), rng.uniform(0, 20), side)[None, :, None]
    paper = np.clip(rng.uniform(205, 245) * tint + light, 0, 255) * np.ones((side, side, 3))
    top, left = (int(rng.integers(0, side - size + 1)) for _ in range(2))
    ink = rng.uniform(20, 70) * np.array([1.0, 1.0, rng.uniform(1.0, 1.6)])
    photo = _place(paper, _ink(digit, size), top, left, ink)
    return _encode(Image.fromarray(photo, "RGB"), "JPEG", quality=int(rng.integers(70, 91)))


def small_off_centre(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A small dark digit somewhere on a white 200x200 canvas, as a web page draws it."""
    side, size = 200, int(rng.integers(30, 61))
    top, left = (int(rng.integers(0, side - size + 1)) for _ in range(2))
    canvas = _place(np.full((side, side), 255), _ink(digit, size), top, left, rng.uniform(0, 40))
    return _encode(Image.fromarray(canvas, "L"))


def grey_paper(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Dark grey ink on grey, noisy paper: a poor scan."""
    side = int(rng.integers(100, 141))
    size = int(side * rng.uniform(0.6, 0.9))
    top, left = (int(rng.integers(0, side - size + 1)) for _ in range(2))
    paper = np.full((side, side), rng.uniform(130, 180))
    scan = _place(paper, _ink(digit, size), top, left, rng.uniform(40, 90)).astype(np.float64)
    scan += rng.normal(0, rng.uniform(6, 12), scan.shape)
    return _encode(Image.fromarray(np.clip(scan, 0, 255).astype(np.uint8), "L"))


def drawing_pad(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """White on black, drawn large on a 300x300 pad."""
    side, size = 300, int(rng.integers(180, 261))
    top, left = (int(rng.integers(0, side - size + 1)) for _ in range(2))
    pad = _place(np.zeros((side, side)), _ink(digit, size), top, left, 255)
    return _encode(Image.fromarray(pad))


def _stroke(digit: np.ndarray, image_filter) -> np.ndarray:
    large = Image.fromarray(digit).resize((112, 112), Image.BICUBIC).filter(image_filter)
    return np.asarray(large.resize((28, 28), Image.BILINEAR))


def thick_strokes(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return drawing_pad(_stroke(digit, ImageFilter.MaxFilter(int(rng.choice([5, 7])))), rng)


def thin_strokes(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return paper_photo(_stroke(digit, ImageFilter.MinFilter(5)), rng)


def rotated(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Slightly rotated (up to 15 degrees), dark on white."""
    image = Image.fromarray(255 - digit).resize((140, 140), Image.BICUBIC)
    turned = image.rotate(rng.uniform(-15, 15), Image.BICUBIC, expand=True, fillcolor=255)
    return _encode(turned)


def jpeg_artefacts(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Heavily compressed."""
    image = Image.fromarray(255 - digit).resize((112, 112), Image.BICUBIC)
    return _encode(image, "JPEG", quality=int(rng.integers(10, 26)))


def colour_cast(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Coloured ink on coloured paper, 3 channels."""
    side, size = 160, int(rng.integers(100, 141))
    top, left = (int(rng.integers(0, side - size + 1)) for _ in range(2))
    paper = rng.uniform(170, 255, size=3) * np.ones((side, side, 3))
    ink = rng.uniform(0, 90, size=3)
    return _encode(Image.fromarray(_place(paper, _ink(digit, size), top, left, ink), "RGB"))


# The four kinds the targets are set on, in equal shares, then the others users send.
KINDS: dict[str, Variant] = {
    "paper photo (JPEG)": paper_photo,
    "small, off-centre": small_off_centre,
    "grey noisy paper": grey_paper,
    "drawing pad": drawing_pad,
}
OTHERS: dict[str, Variant] = {
    "thick strokes": thick_strokes,
    "thin strokes": thin_strokes,
    "rotated up to 15 degrees": rotated,
    "JPEG artefacts": jpeg_artefacts,
    "colour cast": colour_cast,
}


def render(digits: np.ndarray, variant: Variant, seed: int = 0) -> list[bytes]:
    """Every digit (uint8 [N, 28, 28]) rendered as `variant`, reproducibly."""
    rng = np.random.default_rng(seed)
    return [variant(digit, rng) for digit in digits]
