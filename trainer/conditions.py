"""Digits as they really arrive, rendered for the Trainer: training digits drawn onto ruled or
squared paper, into a form's box, under uneven light, as a tiny pixelated digit, in faint or
blurred ink, a little askew, then brought back by the same normalisation that serving runs
(trainer/normalisation.py). The network so learns what the normalisation leaves of each
condition (a gap where a ruling crossed a stroke, blocky edges) instead of meeting it first in
production. And pictures of no one class: two digits side by side, filled shapes, faces.

Everything is batched TensorFlow on a CANVAS-pixel square, drawn once per run into banks that
training batches draw from (rendering each batch afresh cost the Trainer a third more time on
2 cores); `make bench` measures the result on the dev set with independent renderings
(components/data/photos.py).
"""

import math

import numpy as np
import tensorflow as tf

from trainer.features import IMAGE_HEIGHT
from trainer.normalisation import normalise_light

CANVAS = 64  # pixels: the rendered pictures' side
CHUNK = 512  # pictures rendered at once


def _uniform(shape, low: float, high: float) -> tf.Tensor:
    return tf.random.uniform(shape, low, high)


def _chance(count, probability: float) -> tf.Tensor:
    """[count, 1, 1] of 1.0 with `probability`, else 0.0: whether an image gets a condition."""
    return tf.cast(tf.random.uniform([count, 1, 1]) < probability, tf.float32)


def _placed(digits: tf.Tensor, size: tf.Tensor, top: tf.Tensor, left: tf.Tensor, nearest: bool):
    """Digits [N, h, w, 1] (any square side) drawn `size` pixels square at (top, left) of the
    canvas, with a slight perspective: one projective transform per image."""
    count = tf.shape(digits)[0]
    scale = tf.cast(tf.shape(digits)[1], tf.float32) / size
    tilt = _uniform([count, 2], -0.0008, 0.0008)  # corners move by up to ~5 % of the side
    transforms = tf.stack(
        [scale, tf.zeros([count]), -left * scale, tf.zeros([count]), scale, -top * scale],
        axis=1,
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=digits,
        transforms=tf.concat([transforms, tilt], axis=1),
        output_shape=[CANVAS, CANVAS],
        fill_value=0.0,
        interpolation="NEAREST" if nearest else "BILINEAR",
        fill_mode="CONSTANT",
    )


def _lines(positions: tf.Tensor, spacing: tf.Tensor, phase: tf.Tensor) -> tf.Tensor:
    """1 on lines a pixel wide every `spacing` pixels from `phase`, fading over a pixel."""
    distance = tf.math.floormod(positions - phase, spacing)
    distance = tf.minimum(distance, spacing - distance)
    return tf.clip_by_value(1.0 - distance, 0.0, 1.0)


def render(digits: tf.Tensor) -> tf.Tensor:
    """Digits in MNIST's form [N, 28, 28, 1] as pictures of light [N, CANVAS, CANVAS, 1]: dark
    ink on paper, each with a random mix of conditions."""
    count = tf.shape(digits)[0]
    size = _uniform([count], 24.0, 60.0)  # the 28-pixel frame; the ink is 20/28 of it
    top = _uniform([count], 0.0, 1.0) * (CANVAS - size)
    left = _uniform([count], 0.0, 1.0) * (CANVAS - size)
    coverage = _placed(digits, size, top, left, nearest=False)[..., 0]
    # A tiny digit, enlarged without smoothing: 10-14 pixels, then blocks.
    tiny = tf.random.uniform([], 10, 15, tf.int32)
    blocky = _placed(tf.image.resize(digits, [tiny, tiny], "area"), size, top, left, True)
    coverage = tf.where(_chance(count, 0.2) > 0, blocky[..., 0], coverage)
    soft = tf.nn.avg_pool2d(coverage[..., None], 3, 1, "SAME")[..., 0]  # pencil, out of focus
    coverage = tf.where(_chance(count, 0.2) > 0, soft, coverage)

    ys = tf.range(CANVAS, dtype=tf.float32)[None, :, None]
    xs = tf.range(CANVAS, dtype=tf.float32)[None, None, :]
    per_image = [count, 1, 1]
    # Paper: its shade, a gradient of light in any direction, a soft shadow.
    paper = _uniform(per_image, 0.55, 1.0)
    angle = _uniform(per_image, 0.0, 2 * math.pi)
    along = (tf.cos(angle) * xs + tf.sin(angle) * ys) / (CANVAS * math.sqrt(2)) + 0.5
    paper *= 1.0 - _chance(count, 0.5) * _uniform(per_image, 0.1, 0.55) * along
    centre_y, centre_x = _uniform(per_image, 0, CANVAS), _uniform(per_image, 0, CANVAS)
    spread = _uniform(per_image, 0.15, 0.4) * CANVAS
    blob = tf.exp(-((ys - centre_y) ** 2 + (xs - centre_x) ** 2) / (2 * spread**2))
    paper *= 1.0 - _chance(count, 0.3) * _uniform(per_image, 0.2, 0.5) * blob
    paper = tf.maximum(paper, 0.35)  # darker than this, a person could not read it either
    # Marks on the paper: rulings (and squares), a margin line, a form's box, specks.
    spacing = _uniform(per_image, 6.0, 12.0)
    ruled = _lines(ys, spacing, _uniform(per_image, 0, 12))
    columns = _lines(xs, spacing, _uniform(per_image, 0, 12))
    squared = tf.maximum(ruled, _chance(count, 0.4) * columns)
    margin = _chance(count, 0.3) * _lines(xs, 1000.0, _uniform(per_image, 2, 16))
    marks = _chance(count, 0.5) * tf.maximum(squared, margin) * _uniform(per_image, 0.1, 0.45)
    gap = _uniform(per_image, 0.0, 6.0)  # between the ink's box and the form's
    first = 4 / IMAGE_HEIGHT * size[:, None, None] - gap
    last = 24 / IMAGE_HEIGHT * size[:, None, None] + gap
    outline = tf.maximum(
        tf.maximum(_edge(ys, top[:, None, None] + first), _edge(ys, top[:, None, None] + last))
        * _between(xs, left[:, None, None] + first, left[:, None, None] + last),
        tf.maximum(_edge(xs, left[:, None, None] + first), _edge(xs, left[:, None, None] + last))
        * _between(ys, top[:, None, None] + first, top[:, None, None] + last),
    )
    marks = tf.maximum(marks, _chance(count, 0.3) * outline * _uniform(per_image, 0.5, 0.95))
    specks = tf.cast(tf.random.uniform([count, CANVAS, CANVAS]) > 0.998, tf.float32)
    marks = tf.maximum(marks, _chance(count, 0.2) * specks * _uniform(per_image, 0.3, 0.9))
    # Ink from faint pencil to black, then sensor noise.
    ink = _uniform(per_image, 0.45, 0.95)
    light = paper * (1.0 - marks) * (1.0 - ink * coverage)
    noise = _chance(count, 0.6) * _uniform(per_image, 0.0, 0.04)
    light += noise * tf.random.normal(tf.shape(light))
    return tf.clip_by_value(light, 0.0, 1.0)[..., None]


def _edge(positions: tf.Tensor, at: tf.Tensor) -> tf.Tensor:
    """1 on a line a pixel or two wide at `at`, fading over a pixel."""
    return tf.clip_by_value(1.5 - tf.abs(positions - at), 0.0, 1.0)


def _between(positions: tf.Tensor, low: tf.Tensor, high: tf.Tensor) -> tf.Tensor:
    return tf.cast((positions >= low - 1) & (positions <= high + 1), tf.float32)


def as_they_arrive(digits: np.ndarray) -> np.ndarray:
    """Every digit [N, 28, 28, 1] rendered (`render`) and normalised again as serving would, in
    chunks (bounded memory): the Trainer's bank of real-world pictures, drawn once per run."""
    return np.concatenate(
        [
            normalise_light(render(tf.constant(digits[start : start + CHUNK]))).numpy()
            for start in range(0, len(digits), CHUNK)
        ]
    )


def side_by_side(digits: tf.Tensor, partners: tf.Tensor) -> tf.Tensor:
    """Each digit [N, 28, 28, 1] with its partner on its right, dark on white, as pictures of
    light [N, CANVAS, CANVAS, 1]: two digits, which show no one class."""
    count = tf.shape(digits)[0]
    pairs = tf.concat([digits, partners], axis=2)  # [N, 28, 56, 1]
    size = _uniform([count], 22.0, 30.0)  # each digit's frame; the pair is twice as wide
    top = _uniform([count], 0.0, 1.0) * (CANVAS - size)
    left = 2.0 + _uniform([count], 0.0, 1.0) * (CANVAS - 4.0 - 2 * size)  # off the border
    return 1.0 - 0.9 * _placed(pairs, size, top, left, nearest=False)


def blobs(count: int) -> tf.Tensor:
    """Pictures of light [count, CANVAS, CANVAS, 1] of filled, smooth shapes (a random field
    thresholded to cover 40-70 % of its box): the solid regions that photos of faces, objects
    or shadows leave after the normalisation, and that no digit's strokes make."""
    field = tf.image.resize(tf.random.uniform([count, 5, 5, 1]), [CANVAS, CANVAS], "bicubic")
    ordered = tf.sort(tf.reshape(field, [count, -1]), axis=1)
    cover = tf.random.uniform([count], 0.4, 0.7)
    level = tf.gather(ordered, tf.cast((1 - cover) * CANVAS * CANVAS, tf.int32), batch_dims=1)
    return 1.0 - 0.9 * tf.cast(field > level[:, None, None, None], tf.float32)


def _ellipse(ys, xs, centre_y, centre_x, radius_y, radius_x) -> tf.Tensor:
    """[N, CANVAS, CANVAS] coverage of filled ellipses, their edges soft over about a pixel."""
    distance = tf.sqrt(((ys - centre_y) / radius_y) ** 2 + ((xs - centre_x) / radius_x) ** 2)
    return tf.clip_by_value((1.0 - distance) * tf.minimum(radius_y, radius_x) + 0.5, 0.0, 1.0)


def portraits(count: int) -> tf.Tensor:
    """Pictures of light [count, CANVAS, CANVAS, 1] of faces, as in a passport photo: shoulders,
    a neck, hair, a face with eyes and a mouth, on a background of its own shade. The normalisation
    leaves of them the rim of the hair and a few dots, or a head on its neck, which a network
    takes for a 0 or a 9 unless it has learnt that such pictures show no digit. Drawn apart
    from the benchmark's faces (components/data/photos.py), which so measure faces the Trainer
    never drew."""
    ys = tf.range(CANVAS, dtype=tf.float32)[None, :, None]
    xs = tf.range(CANVAS, dtype=tf.float32)[None, None, :]
    per_image = [count, 1, 1]

    def shade(low: float, high: float) -> tf.Tensor:
        return _uniform(per_image, low, high)

    along = ys / CANVAS
    light = shade(0.15, 0.95) + (shade(0.15, 0.95) - shade(0.15, 0.95)) * along / 2
    x, y = shade(0.4, 0.6) * CANVAS, shade(0.35, 0.5) * CANVAS
    width, height = shade(0.16, 0.3) * CANVAS, shade(0.2, 0.32) * CANVAS  # the face's half
    skin = shade(0.45, 0.9)
    layers = [  # (coverage, shade), painted in order: shoulders, neck, hair, face, mouth
        (_ellipse(ys, xs, y + 2.6 * height, x, 1.4 * height, 2.5 * width), shade(0.1, 0.8)),
        (_ellipse(ys, xs, y + 1.05 * height, x, 0.5 * height, 0.4 * width), skin),
        (_ellipse(ys, xs, y - 0.3 * height, x, 0.9 * height, 1.15 * width), shade(0.02, 0.5)),
        (_ellipse(ys, xs, y, x, height, width), skin),
        (_ellipse(ys, xs, y + 0.5 * height, x, 0.15 * height, 0.4 * width), shade(0.2, 0.6)),
    ]
    eye_y, eye_radius = y - 0.2 * height, 0.12 * width
    for eye_x in (x - 0.4 * width, x + 0.4 * width):
        layers.append((_ellipse(ys, xs, eye_y, eye_x, eye_radius, eye_radius), shade(0.0, 0.3)))
    for coverage, value in layers:
        light = light * (1.0 - coverage) + value * coverage
    light = tf.nn.avg_pool2d(light[..., None], 3, 1, "SAME")  # out of focus
    return tf.clip_by_value(light + 0.02 * tf.random.normal(tf.shape(light)), 0.0, 1.0)


def not_one_class(digits: np.ndarray) -> np.ndarray:
    """Pictures that show no one class, in MNIST's form: each digit [N, 28, 28, 1] beside the
    next, and as many filled shapes and faces."""
    partners = np.roll(digits, 1, axis=0)
    pairs = side_by_side(tf.constant(digits), tf.constant(partners))
    kinds = [pairs, blobs(len(digits)), portraits(len(digits))]  # pictures of light, each
    return np.concatenate([normalise_light(light).numpy() for light in kinds])
