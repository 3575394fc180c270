"""A generated colour data set for the photos profile: six classes of coloured shapes where
colour alone (a red circle against a blue one), shape alone (a red circle against a red
square) and both together decide the class, on textured backgrounds under uneven light.

The two colours have about the same brightness, and each picture's light varies more than
their difference: in grey, only the shape is left, so a grey model can tell at most the shape.

`python -m components.data.colour_shapes <folder> [--count N] [--size S]` writes
`<folder>/<class>/<n>.jpg` (`make photos-data` writes outputs/data/colour-shapes).
"""

import argparse
import colorsys
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

COLOURS = {"red": 0.0, "blue": 0.62}  # hues; their grey levels overlap under varied light
SHAPES = ("circle", "square", "triangle")
CLASS_NAMES = tuple(f"{colour}_{shape}" for colour in COLOURS for shape in SHAPES)
MIN_SIDE, MAX_SIDE = 48, 128


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Float RGB [H, W, 3] in [0, 1]: a muted random colour with a smooth texture, sometimes
    stripes or checks, under light that falls off across the picture."""
    base = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.35), rng.uniform(0.35, 0.9)))
    coarse = rng.normal(0, 1, (height // 8 + 2, width // 8 + 2))
    texture = np.asarray(
        Image.fromarray(coarse.astype(np.float32)).resize((width, height), Image.BICUBIC)
    )
    picture = base[None, None, :] * (1 + 0.15 * texture[..., None])
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    pattern = rng.integers(3)
    if pattern == 1:  # stripes
        picture *= (
            1
            + 0.12 * np.sign(np.sin(x * rng.uniform(20, 60) + y * rng.uniform(-20, 20)))[..., None]
        )
    elif pattern == 2:  # checks
        period = rng.uniform(6, 16) / max(height, width)
        checks = (np.floor(x / period) + np.floor(y / period)) % 2
        picture *= 1 + 0.12 * (2 * checks - 1)[..., None]
    angle = rng.uniform(0, 2 * np.pi)
    light = 1 + rng.uniform(0.1, 0.5) * (np.cos(angle) * (x - 0.5) + np.sin(angle) * (y - 0.5))
    return picture * light[..., None]


def shape_mask(rng: np.random.Generator, shape: str, height: int, width: int) -> np.ndarray:
    """Float [H, W] in [0, 1]: `shape` at a random size, place and turn, with soft edges."""
    scale = 4  # drawn large and shrunk: antialiased edges
    canvas = Image.new("L", (width * scale, height * scale), 0)
    side = min(height, width) * scale
    radius = rng.uniform(0.22, 0.36) * side
    cx = rng.uniform(radius, width * scale - radius)
    cy = rng.uniform(radius, height * scale - radius)
    draw = ImageDraw.Draw(canvas)
    if shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=255)
    else:
        corners = 4 if shape == "square" else 3
        turn = rng.uniform(0, 2 * np.pi)
        # A square's corners lie further out than a triangle's for the same visible size.
        reach = radius * (1.15 if corners == 4 else 1.3)
        angles = turn + 2 * np.pi * np.arange(corners) / corners
        draw.polygon([(cx + reach * np.cos(a), cy + reach * np.sin(a)) for a in angles], fill=255)
    shrunk = canvas.resize((width, height), Image.BOX).filter(ImageFilter.GaussianBlur(0.5))
    return np.asarray(shrunk, np.float32) / 255


def picture(rng: np.random.Generator, class_name: str, size: int | None) -> Image.Image:
    """One picture of `class_name` ("red_circle"), `size` pixels square or of random sides."""
    colour, shape = class_name.split("_")
    height, width = (size, size) if size else rng.integers(MIN_SIDE, MAX_SIDE + 1, 2)
    hue = (COLOURS[colour] + rng.normal(0, 0.025)) % 1
    paint = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.55, 1), rng.uniform(0.45, 1)))
    scene = background(rng, height, width)
    mask = shape_mask(rng, shape, height, width)[..., None]
    shading = 1 + rng.uniform(-0.15, 0.15) * (np.linspace(-1, 1, height)[:, None, None])
    scene = scene * (1 - mask) + paint[None, None, :] * shading * mask
    noisy = scene + rng.normal(0, 0.02, scene.shape)
    return Image.fromarray((np.clip(noisy, 0, 1) * 255).astype(np.uint8))


def write(folder: Path, count: int, size: int | None = None, seed: int = 0) -> None:
    """`count` pictures, as many per class, as `<folder>/<class>/<n>.jpg`. They are written
    beside the folder and moved in at the end: a killed write never leaves a part of a set."""
    rng = np.random.default_rng(seed)
    staging = folder.with_name(f".{folder.name}.{os.getpid()}.partial")
    try:
        for index in range(count):
            class_name = CLASS_NAMES[index % len(CLASS_NAMES)]
            (staging / class_name).mkdir(parents=True, exist_ok=True)
            image = picture(rng, class_name, size)
            image.save(staging / class_name / f"{index}.jpg", quality=90)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--size", type=int, default=None, help="square side (default: random)")
    parser.add_argument("--seed", type=int, default=0)
    flags = parser.parse_args()
    write(flags.folder, flags.count, flags.size, flags.seed)
    print(f"Wrote {flags.count} pictures of {len(CLASS_NAMES)} classes to {flags.folder}")


if __name__ == "__main__":
    main()
