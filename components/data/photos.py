"""MNIST digits re-rendered the way people send digits: photos of ink on paper, small digits
off-centre on a web page's canvas, grey scans, drawings on a pad, and a few more. For the
real-world benchmark (`make bench`, on the dev set) and the tests (on the sample).
CONDITIONS are harder pictures the model is measured on (tests/bench/real_world.py), and
`printed_digit` prints a label in a machine font: what arrives when people type or print.

Each variant takes a digit in MNIST's form (uint8 [28, 28], white on black) and a random
generator, and returns encoded image bytes (PNG or JPEG), as a client would send them.
"""

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from trainer.fonts import FONT_DIR, font_files

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


# Harder conditions, as pictures of digits really arrive -------------------------------------


def _spot(side: int, size: int, rng: np.random.Generator, margin: int = 0) -> tuple[int, int]:
    """A random top-left corner for `size` pixels square, `margin` inside a `side` square."""
    top, left = (int(rng.integers(margin, side - margin - size + 1)) for _ in range(2))
    return top, left


def _light_paper(side: int, rng: np.random.Generator) -> np.ndarray:
    """Off-white, slightly tinted paper, float [side, side, 3]."""
    return rng.uniform(225, 250) * rng.uniform(0.94, 1.0, size=3) * np.ones((side, side, 3))


def _dark_ink(rng: np.random.Generator) -> np.ndarray:
    """Black to dark blue ink, RGB."""
    return rng.uniform(10, 70) * np.array([1.0, 1.0, rng.uniform(1.0, 1.6)])


def _png_or_jpeg(image: Image.Image, rng: np.random.Generator) -> bytes:
    """Either format, as clients send both."""
    if rng.random() < 0.5:
        return _encode(image)
    return _encode(image, "JPEG", quality=int(rng.integers(70, 96)))


def ruled_notebook(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Dark ink on ruled notebook paper: thin blue-grey lines cross the digit; a red margin."""
    side, size = 280, int(rng.integers(100, 221))
    paper = _light_paper(side, rng)
    spacing, width = int(rng.integers(25, 46)), int(rng.integers(1, 4))
    line = rng.uniform([140, 160, 190], [200, 215, 240])
    for row in range(int(rng.integers(0, spacing)), side, spacing):
        paper[row : row + width] = line
    margin, margin_width = int(rng.integers(15, 50)), int(rng.integers(1, 4))
    paper[:, margin : margin + margin_width] = rng.uniform([200, 90, 100], [245, 160, 180])
    top = int(rng.integers(0, side - size + 1))
    left = int(rng.integers(margin + 4, side - size + 1))  # right of the margin
    page = _place(paper, _ink(digit, size), top, left, _dark_ink(rng))
    return _png_or_jpeg(Image.fromarray(page, "RGB"), rng)


def form_box(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Written in a form's box, cropped a little outside it, sometimes with part of the next box
    at the left or right edge; grayscale."""
    size, border = int(rng.integers(60, 141)), int(rng.integers(1, 5))
    box_height, box_width = (int(size * rng.uniform(1.1, 1.6)) + 2 * border for _ in range(2))
    top, right, bottom, left = (int(rng.integers(2, 26)) for _ in range(4))  # paper around it
    paper, line = int(rng.uniform(215, 255)), int(rng.uniform(0, 90))
    image = Image.new("L", (left + box_width + right, top + box_height + bottom), paper)
    draw = ImageDraw.Draw(image)
    box = (left, top, left + box_width - 1, top + box_height - 1)
    draw.rectangle(box, outline=line, width=border)
    if rng.random() < 0.4:
        if rng.random() < 0.5:
            start = box[2] + int(rng.integers(1, right))
        else:
            start = box[0] - int(rng.integers(1, left)) - box_width + 1
        draw.rectangle((start, box[1], start + box_width - 1, box[3]), outline=line, width=border)
    digit_top = top + border + int(rng.integers(0, box_height - 2 * border - size + 1))
    digit_left = left + border + int(rng.integers(0, box_width - 2 * border - size + 1))
    form = _place(np.asarray(image), _ink(digit, size), digit_top, digit_left, rng.uniform(0, 80))
    return _encode(Image.fromarray(form, "L"))


def uneven_light(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A phone photo under uneven light: a strong gradient across the page in any direction,
    a soft shadow, or both; sensor noise, a colour JPEG."""
    side, size = 280, int(rng.integers(120, 221))
    top, left = _spot(side, size, rng)
    paper = 255 * rng.uniform(0.94, 1.0, size=3) * np.ones((side, side, 3))
    page = _place(paper, _ink(digit, size), top, left, _dark_ink(rng)).astype(np.float64)
    ys, xs = np.mgrid[0:side, 0:side] / (side - 1)
    gradient, shadow = [(True, False), (False, True), (True, True)][int(rng.integers(3))]
    if gradient:
        angle = rng.uniform(0, 2 * np.pi)
        along = np.cos(angle) * xs + np.sin(angle) * ys
        along = (along - along.min()) / (along.max() - along.min())
        dark, bright = rng.uniform(90, 140), rng.uniform(220, 250)
        light = dark + (bright - dark) * along
    else:
        light = np.full((side, side), rng.uniform(200, 245))
    if shadow:
        centre_y, centre_x = rng.uniform(0, 1, size=2)
        spread = rng.uniform(0.15, 0.4)
        blob = np.exp(-((ys - centre_y) ** 2 + (xs - centre_x) ** 2) / (2 * spread**2))
        light = light * (1 - rng.uniform(0.25, 0.5) * blob)
    photo = page * light[..., None] / 255 + rng.normal(0, rng.uniform(3, 8), page.shape)
    image = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8), "RGB")
    return _encode(image, "JPEG", quality=int(rng.integers(60, 91)))


def tiny_pixelated(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A tiny digit (10-14 pixels) enlarged 6-10x without smoothing: big square pixels."""
    small = int(rng.integers(10, 15))
    large = small * int(rng.integers(6, 11))
    image = Image.fromarray(digit).resize((small, small), Image.BOX)
    image = image.resize((large, large), Image.NEAREST)
    return _encode(ImageOps.invert(image) if rng.random() < 0.5 else image)


def checkered(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Dark ink on squared paper: a light grey or blue grid of 15-30 pixel squares."""
    side = int(rng.integers(200, 301))
    size = int(rng.integers(100, min(side, 220) + 1))
    paper = _light_paper(side, rng)
    spacing = int(rng.integers(15, 31))
    line = rng.uniform([150, 165, 185], [205, 215, 240])
    paper[int(rng.integers(0, spacing)) :: spacing] = line
    paper[:, int(rng.integers(0, spacing)) :: spacing] = line
    top, left = _spot(side, size, rng)
    page = _place(paper, _ink(digit, size), top, left, _dark_ink(rng))
    return _png_or_jpeg(Image.fromarray(page, "RGB"), rng)


def pencil(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Pencil: light grey, thin, soft and grainy strokes on off-white paper."""
    side = int(rng.integers(160, 261))
    size = int(side * rng.uniform(0.6, 0.9))
    thin = Image.fromarray(np.uint8(255 * _ink(_stroke(digit, ImageFilter.MinFilter(3)), size)))
    soft = np.asarray(thin.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))) / 255.0
    grain = np.clip(rng.normal(0.8, 0.25, soft.shape), 0, 1)
    top, left = _spot(side, size, rng)
    paper = np.full((side, side), rng.uniform(230, 248))
    sketch = _place(paper, soft * grain, top, left, rng.uniform(100, 170)).astype(np.float64)
    sketch += rng.normal(0, 2, sketch.shape)
    return _png_or_jpeg(Image.fromarray(np.clip(sketch, 0, 255).astype(np.uint8), "L"), rng)


def blue_ballpoint(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Blue ballpoint ink on white paper, in colour."""
    side = int(rng.integers(140, 281))
    size = int(side * rng.uniform(0.5, 0.9))
    top, left = _spot(side, size, rng)
    paper = rng.uniform(242, 255, size=3) * np.ones((side, side, 3))
    ink = rng.uniform([20, 40, 140], [60, 90, 220])
    page = _place(paper, _ink(digit, size), top, left, ink)
    return _png_or_jpeg(Image.fromarray(page, "RGB"), rng)


STAMP_INKS = (  # red, green, blue: each colour's lowest and highest RGB
    ([170, 20, 30], [230, 60, 70]),
    ([20, 110, 40], [70, 160, 90]),
    ([20, 50, 150], [60, 100, 210]),
)


def coloured_stamp(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A rubber stamp in red, green or blue: patchy, speckled ink on light paper."""
    side = int(rng.integers(160, 281))
    size = int(side * rng.uniform(0.6, 0.9))
    low, high = STAMP_INKS[int(rng.integers(len(STAMP_INKS)))]
    patches = Image.fromarray(np.uint8(255 * rng.uniform(0.4, 1.0, (6, 6))))
    patchy = np.asarray(patches.resize((size, size), Image.BILINEAR)) / 255.0
    speckle = np.clip(rng.normal(1.0, 0.15, (size, size)), 0, 1)
    ink = _ink(digit, size) * patchy * speckle
    top, left = _spot(side, size, rng)
    page = _place(_light_paper(side, rng), ink, top, left, rng.uniform(low, high))
    return _png_or_jpeg(Image.fromarray(page, "RGB"), rng)


def _perspective(seen: np.ndarray, side: int) -> list[float]:
    """PIL's 8 PERSPECTIVE coefficients that map the output's corners to the quadrilateral
    `seen` ([4, 2]: top-left, top-right, bottom-right, bottom-left) of the input."""
    rows = []
    for (x, y), (u, v) in zip([(0, 0), (side, 0), (side, side), (0, side)], seen, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    return np.linalg.solve(np.array(rows, dtype=np.float64), seen.reshape(-1)).tolist()


def slight_perspective(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Paper photographed a little askew: each corner moved inwards by up to 8 % of the side
    (a mild perspective warp), so only paper shows at the edges; a colour JPEG."""
    side, margin = 280, 28  # the digit stays clear of the moved corners
    size = int(rng.integers(100, side - 2 * margin + 1))
    top, left = _spot(side, size, rng, margin)
    page = _place(_light_paper(side, rng), _ink(digit, size), top, left, _dark_ink(rng))
    corners = np.array([[0, 0], [side, 0], [side, side], [0, side]], dtype=np.float64)
    inwards = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]])
    seen = corners + inwards * rng.uniform(0, 0.08 * side, size=(4, 2))
    photo = Image.fromarray(page, "RGB").transform(
        (side, side), Image.PERSPECTIVE, _perspective(seen, side), Image.BICUBIC
    )
    return _encode(photo, "JPEG", quality=int(rng.integers(70, 93)))


def printed_digit(label: int, rng: np.random.Generator) -> bytes:
    """The digit `label` printed in a random machine font, 40-120 pixels, dark on light paper,
    turned by up to 10 degrees; PNG or JPEG."""
    fonts = font_files()
    if not fonts:
        raise FileNotFoundError(f"No TrueType fonts under {FONT_DIR} to print digits with")
    font = ImageFont.truetype(str(fonts[int(rng.integers(len(fonts)))]), int(rng.integers(40, 121)))
    text = str(label)
    left, top, right, bottom = font.getbbox(text)
    margin = int(font.size * rng.uniform(0.2, 0.8))
    paper = tuple(int(v) for v in _light_paper(1, rng)[0, 0])  # one pixel's colour
    image = Image.new("RGB", (right - left + 2 * margin, bottom - top + 2 * margin), paper)
    ink = tuple(int(v) for v in _dark_ink(rng))
    ImageDraw.Draw(image).text((margin - left, margin - top), text, font=font, fill=ink)
    turned = image.rotate(rng.uniform(-10, 10), Image.BICUBIC, expand=True, fillcolor=paper)
    return _png_or_jpeg(turned, rng)


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
# Harder pictures, as digits really arrive: rendered here for measurement only (the Trainer
# renders its own, trainer/conditions.py), so the bench does not grade the training data.
CONDITIONS: dict[str, Variant] = {
    "ruled notebook paper": ruled_notebook,
    "inside a form's box": form_box,
    "uneven light (phone photo)": uneven_light,
    "tiny digit, pixelated": tiny_pixelated,
    "checkered paper": checkered,
    "pencil": pencil,
    "blue ballpoint on white": blue_ballpoint,
    "coloured stamp": coloured_stamp,
    "slight perspective": slight_perspective,
}


def render(digits: np.ndarray, variant: Variant, seed: int = 0) -> list[bytes]:
    """Every digit (uint8 [N, 28, 28]) rendered as `variant`, reproducibly."""
    rng = np.random.default_rng(seed)
    return [variant(digit, rng) for digit in digits]


def render_printed(labels: np.ndarray, seed: int = 0) -> list[bytes]:
    """Every label printed as `printed_digit`, reproducibly (on the same fonts)."""
    rng = np.random.default_rng(seed)
    return [printed_digit(int(label), rng) for label in labels]


# Pictures that are not one digit, as users send them by mistake -----------------------------
# Each takes a pair of digits (uint8 [2, 28, 28]) so that "two digits" has both; the others
# ignore them. The model should answer them unsure (confidence below the threshold) or with no
# ink found, never with a confident digit.

NotDigit = Callable[[np.ndarray, np.random.Generator], bytes]
WORDS = ("Hello", "total", "Name", "date", "sign", "Price", "item", "note", "Dear", "paid")


def two_digits(pair: np.ndarray, rng: np.random.Generator) -> bytes:
    """Both digits side by side, dark on light paper, as one 240x140 picture."""
    width, height = 240, 140
    size, gap = int(rng.integers(50, 101)), int(rng.integers(0, 31))
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - 2 * size - gap + 1))
    page = _light_paper(max(width, height), rng)[:height, :width]
    ink = _dark_ink(rng)
    for i, digit in enumerate(pair):
        page = _place(page, _ink(digit, size), top, left + i * (size + gap), ink)
    return _png_or_jpeg(Image.fromarray(page, "RGB"), rng)


def word_of_text(pair: np.ndarray, rng: np.random.Generator) -> bytes:
    """A short word printed in a random machine font (Pillow's own where there are none), dark
    on light paper: a picture of text instead of a digit."""
    fonts, size = font_files(), int(rng.integers(30, 71))
    if fonts:
        font = ImageFont.truetype(str(fonts[int(rng.integers(len(fonts)))]), size)
    else:
        font = ImageFont.load_default(size)
    text = WORDS[int(rng.integers(len(WORDS)))]
    left, top, right, bottom = font.getbbox(text)
    margin = int(size * rng.uniform(0.2, 0.8))
    paper = tuple(int(v) for v in _light_paper(1, rng)[0, 0])
    image = Image.new("RGB", (right - left + 2 * margin, bottom - top + 2 * margin), paper)
    ink = tuple(int(v) for v in _dark_ink(rng))
    ImageDraw.Draw(image).text((margin - left, margin - top), text, font=font, fill=ink)
    return _png_or_jpeg(image, rng)


LIGHT_SKIN, DARK_SKIN = np.array([241, 200, 170]), np.array([95, 60, 45])  # RGB


def _around(x: float, y: float, half_width: float, half_height: float) -> tuple[float, ...]:
    """The box (left, top, right, bottom) centred on (x, y), for ImageDraw."""
    return x - half_width, y - half_height, x + half_width, y + half_height


def drawn_face(pair: np.ndarray, rng: np.random.Generator) -> bytes:
    """A synthetic portrait photo: hair, a face with eyes, eyebrows, nose and mouth, shoulders,
    on a gradient background; softly blurred, noisy, a colour JPEG."""
    width, height = int(rng.integers(200, 321)), int(rng.integers(240, 361))
    top_colour, bottom_colour = rng.uniform(40, 230, size=(2, 3))
    along = np.linspace(0, 1, height)[:, None, None]
    background = (top_colour + (bottom_colour - top_colour) * along) * np.ones((1, width, 1))
    image = Image.fromarray(background.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)

    def colour(low, high) -> tuple[int, ...]:
        return tuple(int(v) for v in rng.uniform(low, high))

    tone = LIGHT_SKIN + (DARK_SKIN - LIGHT_SKIN) * rng.uniform() + rng.uniform(-8, 8, size=3)
    skin, hair = tuple(int(v) for v in tone), colour([10, 5, 0], [120, 80, 50])
    x, y = width * rng.uniform(0.45, 0.55), height * rng.uniform(0.4, 0.5)
    w, h = width * rng.uniform(0.22, 0.3), height * rng.uniform(0.25, 0.32)  # the face's half
    draw.ellipse(_around(x, y + 2.6 * h, 2.5 * w, 1.4 * h), fill=colour([20] * 3, [200] * 3))
    draw.rectangle(_around(x, y + 1.05 * h, 0.4 * w, 0.45 * h), fill=skin)  # the neck
    draw.ellipse(_around(x, y - 0.375 * h, 1.15 * w, 0.875 * h), fill=hair)
    draw.ellipse(_around(x, y, w, h), fill=skin)
    eye_y, eye_r = y - 0.2 * h, 0.12 * w
    for eye_x in (x - 0.4 * w, x + 0.4 * w):
        draw.ellipse(_around(eye_x, eye_y, 1.6 * eye_r, eye_r), fill=(235, 235, 230))
        draw.ellipse(_around(eye_x, eye_y, eye_r, eye_r), fill=colour([20] * 3, [90, 70, 60]))
        brow = eye_y - 2.2 * eye_r + rng.uniform(-2, 2, size=2)
        line = (eye_x - 1.8 * eye_r, brow[0], eye_x + 1.8 * eye_r, brow[1])
        draw.line(line, fill=hair, width=max(2, int(eye_r / 2)))
    nose = (x, eye_y + eye_r, x - 0.1 * w, y + 0.3 * h)
    draw.line(nose, fill=tuple(int(v * 0.8) for v in skin), width=2)
    mouth = _around(x, y + 0.5 * h, w * rng.uniform(0.3, 0.5), 0.15 * h)
    draw.chord(mouth, 0, 180, fill=colour([120, 30, 40], [200, 90, 100]))
    soft = image.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 2.5)))
    photo = np.asarray(soft) + rng.normal(0, rng.uniform(2, 6), (height, width, 3))
    photo = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8), "RGB")
    return _encode(photo, "JPEG", quality=int(rng.integers(60, 91)))


def _noisy(paper: np.ndarray, rng: np.random.Generator) -> bytes:
    """`paper` (float RGB) with sensor noise, PNG or JPEG."""
    noisy = paper + rng.normal(0, rng.uniform(1, 4), paper.shape)
    return _png_or_jpeg(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB"), rng)


def dust(pair: np.ndarray, rng: np.random.Generator) -> bytes:
    """Near-blank: light paper with 1-5 tiny dark specks (1-3 pixels) and sensor noise."""
    side = int(rng.integers(160, 301))
    paper = _light_paper(side, rng)
    for _ in range(int(rng.integers(1, 6))):
        size = int(rng.integers(1, 4))
        top, left = _spot(side, size, rng)
        paper[top : top + size, left : left + size] = rng.uniform(40, 160)
    return _noisy(paper, rng)


def faint_smudge(pair: np.ndarray, rng: np.random.Generator) -> bytes:
    """Near-blank: paper with one large, soft smudge only 3-8 grey levels darker, and noise."""
    side = int(rng.integers(160, 301))
    ys, xs = np.mgrid[0:side, 0:side]
    centre_y, centre_x = rng.uniform(0.2, 0.8, size=2) * side
    spread = side * rng.uniform(0.1, 0.25)
    blob = np.exp(-((ys - centre_y) ** 2 + (xs - centre_x) ** 2) / (2 * spread**2))
    paper = _light_paper(side, rng) - rng.uniform(3, 8) * blob[..., None]
    return _noisy(paper, rng)


def short_scratch(pair: np.ndarray, rng: np.random.Generator) -> bytes:
    """Near-blank: paper with one short (5-15 pixels), thin, medium grey line somewhere."""
    side = int(rng.integers(160, 301))
    image = Image.fromarray(_light_paper(side, rng).astype(np.uint8), "RGB")
    length, angle = rng.uniform(5, 15), rng.uniform(0, np.pi)
    x, y = rng.uniform(15, side - 15, size=2)
    end = (x + length * np.cos(angle), y + length * np.sin(angle))
    ImageDraw.Draw(image).line((x, y, *end), fill=(int(rng.uniform(100, 160)),) * 3, width=1)
    return _noisy(np.asarray(image, dtype=np.float64), rng)


NOT_DIGITS: dict[str, NotDigit] = {
    "two digits side by side": two_digits,
    "a word of text": word_of_text,
    "a face (drawn)": drawn_face,
    "near-blank: dust": dust,
    "near-blank: faint smudge": faint_smudge,
    "near-blank: a short scratch": short_scratch,
}


def render_pairs(digits: np.ndarray, variant: NotDigit, seed: int = 0) -> list[bytes]:
    """A picture per digit (uint8 [N, 28, 28]) as `variant`, digit i paired with the next one
    (the last with the first), reproducibly."""
    rng = np.random.default_rng(seed)
    following = np.roll(digits, -1, axis=0)
    return [variant(np.stack(pair), rng) for pair in zip(digits, following, strict=True)]
