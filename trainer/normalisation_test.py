"""MNIST's normalisation on constructed pictures, through the Transform graph's decoding."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.data.codecs import encode_png
from components.data.photos import grey_paper, small_off_centre
from trainer.normalisation import (
    CORE_INK,
    INK_LEVEL,
    MIN_CORE_LEVEL,
    STROKE_CORE,
    _block,
    _dilate,
    _full_strokes,
    dominant_ink,
)
from trainer.preprocessing import decode_digits, decode_images


def encoded(pixels: np.ndarray, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format=image_format)
    return buffer.getvalue()


def normalised(pictures: list[bytes]) -> np.ndarray:
    return decode_images(tf.constant(pictures)).numpy()[..., 0]


def centre_and_side(image: np.ndarray) -> tuple[float, float, int]:
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    total = image.sum()
    rows, cols = np.flatnonzero(image.max(axis=1) > 0.05), np.flatnonzero(image.max(axis=0) > 0.05)
    side = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    return (ys * image).sum() / total, (xs * image).sum() / total, side


def test_digits_in_mnists_form_pass_nearly_unchanged(digits):
    pixels = digits[0] / 255.0
    out = normalised([encode_png(p) for p in digits[0]])
    difference = np.abs(out - pixels)
    assert difference.mean() < 0.002  # measured: 0.0004 on 300 sample digits
    assert np.mean(difference.max(axis=(1, 2)) < 1e-4) > 0.8  # most are identical


def test_grey_strokes_are_made_full_ink_in_their_middle_within_a_bound(digits):
    pixels = tf.constant(digits[0][:16] / 255.0, tf.float32)
    full = _full_strokes(pixels).numpy()
    np.testing.assert_allclose(full, pixels.numpy(), atol=0.05)  # MNIST's: about as they are
    # Grey (a thin stroke shrunk), however grey: its strongest 30 % made at least 90 % ink.
    grey = _full_strokes(0.5 * pixels).numpy()
    # (within a hundredth: the faintest edge pixels count as ink at one grey and not the other)
    np.testing.assert_allclose(grey, _full_strokes(0.7 * pixels).numpy(), atol=0.01)
    for image, ink in zip(grey, 0.5 * pixels.numpy() > INK_LEVEL, strict=True):
        assert np.mean(image[ink] >= CORE_INK - 1e-6) >= STROKE_CORE
    faint = _full_strokes(0.2 * pixels).numpy()  # stretched 1 / MIN_CORE_LEVEL times at most
    np.testing.assert_allclose(faint, 0.2 / MIN_CORE_LEVEL * pixels.numpy(), atol=1e-6)
    assert _full_strokes(tf.zeros([1, 28, 28])).numpy().max() == 0.0


def test_dark_ink_on_light_paper_equals_the_mnist_form(digits):
    light = normalised([encode_png(255 - p) for p in digits[0][:16]])
    dark = normalised([encode_png(p) for p in digits[0][:16]])
    np.testing.assert_allclose(light, dark, atol=1e-5)


def test_small_off_centre_digits_land_centred_and_20_pixels_tall(digits):
    rng = np.random.default_rng(0)
    out = normalised([small_off_centre(p, rng) for p in digits[0][:16]])
    for image, original in zip(out, digits[0][:16] / 255.0, strict=True):
        centre_y, centre_x, side = centre_and_side(image)
        assert abs(centre_y - 14) < 1 and abs(centre_x - 14) < 1
        assert side in (19, 20, 21)
        assert np.corrcoef(image.ravel(), original.ravel())[0, 1] > 0.7


def test_polarity_and_noise_of_grey_paper(digits):
    rng = np.random.default_rng(1)
    out = normalised([grey_paper(p, rng) for p in digits[0][:16]])
    originals = digits[0][:16] / 255.0
    # Beyond 2 pixels of the digit's strokes (whose edges the stretch to full ink widens).
    paper = _dilate(tf.constant(originals[..., None], tf.float32), [5, 5]).numpy()[..., 0] == 0
    for image, original, on_paper in zip(out, originals, paper, strict=True):
        assert similarity(image, original) > 0.75  # measured 0.77-0.98: a speck drops
        assert image[on_paper].mean() < 0.01  # the paper's noise is gone


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((1, 1)),
        np.full((40, 60), 255),
        np.zeros((30, 30)),
        np.full((1, 2000), 128),
        np.full((2000, 1), 17),
        np.random.default_rng(2).normal(128, 2, (50, 50)).clip(0, 255),  # a photo of no ink
    ],
    ids=["1x1", "all-white", "all-black", "1x2000", "2000x1", "blank-photo"],
)
def test_pictures_without_ink_become_all_zeros(pixels):
    for image_format in ("PNG", "JPEG"):
        out = normalised([encoded(pixels, image_format)])
        assert out.shape == (1, 28, 28) and not np.isnan(out).any()
        assert out.max() == 0.0


def test_specks_of_dust_far_apart_are_no_digit():
    """Specks that weigh alike are each kept as the others' stray and span a digit's box
    between them, but none is a stroke: no ink, as on a blank page."""
    page = np.full((200, 200), 230.0)
    for top, left in ((30, 40), (60, 150), (120, 90), (170, 20), (100, 180)):
        page[top : top + 3, left : left + 3] = 80.0
    for image_format in ("PNG", "JPEG"):
        assert normalised([encoded(page, image_format)]).max() == 0.0


def on_paper(digit: np.ndarray, marks=None, light=None, side: int = 200) -> bytes:
    """The digit dark on white paper, 120 pixels at (40, 40) of a `side` square; `marks`
    (0-1 darkening, [side, side]) drawn on the paper, `light` ([side, side]) multiplying it."""
    ink = np.asarray(Image.fromarray(digit).resize((120, 120), Image.BICUBIC)) / 255.0
    coverage = np.zeros((side, side))
    coverage[40:160, 40:160] = ink
    paper = np.full((side, side), 235.0) * (1 - (0 if marks is None else marks))
    page = paper * (1 - 0.85 * coverage) * (1 if light is None else light)
    return encoded(np.clip(page, 0, 255))


def similarity(image: np.ndarray, reference: np.ndarray) -> float:
    """The correlation of two 28x28 images, the best over shifts of a pixel: centring by the
    centre of mass moves a digit by a whole pixel when its ink shifts by a fraction."""
    padded = np.pad(image, 1)
    return max(
        np.corrcoef(padded[1 + dy : 29 + dy, 1 + dx : 29 + dx].ravel(), reference.ravel())[0, 1]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )


def agreement(pictures: list[bytes], clean: list[bytes]) -> np.ndarray:
    """Per picture, the similarity of its normalised form with the clean picture's."""
    return np.array(
        [similarity(a, b) for a, b in zip(normalised(pictures), normalised(clean), strict=True)]
    )


def test_a_forms_box_around_the_digit_is_removed(digits):
    box = np.zeros((200, 200))
    box[25:28, 25:175] = box[172:175, 25:175] = box[25:175, 25:28] = box[25:175, 172:175] = 0.9
    boxed = [on_paper(d, marks=box) for d in digits[0][:16]]
    assert agreement(boxed, [on_paper(d) for d in digits[0][:16]]).min() > 0.95  # 0.99-1.0


def test_a_forms_box_with_the_next_box_beside_it_is_removed(digits):
    """The box's corners (across each edge, the other edge is as thick as a stroke) and the two
    boxes' edges side by side (together as thick as a stroke) go too; no second digit."""
    form = np.zeros((200, 200))
    form[25:29, 25:200] = form[171:175, 25:200] = 0.9  # both boxes' top and bottom edges
    form[25:175, 25:29] = form[25:175, 171:175] = form[25:175, 177:181] = 0.9
    pictures = [on_paper(d, marks=form) for d in digits[0][:16]]
    assert agreement(pictures, [on_paper(d) for d in digits[0][:16]]).min() > 0.95  # 0.98-1.0
    assert decode_digits(tf.constant(pictures))[1].numpy().max() == 0.0


def test_squared_paper_keeps_the_strokes_where_its_lines_cross(digits):
    grid = np.zeros((200, 200))
    grid[3::20, :] = grid[:, 3::20] = 0.3  # many lines each way: no box's corners
    squared = agreement(
        [on_paper(d, marks=grid) for d in digits[0][:16]], [on_paper(d) for d in digits[0][:16]]
    )
    # Measured: median 0.97 (0.79 where a stroke lies along a line); 0.90 with the crossings gone.
    assert np.median(squared) > 0.95


def test_ruled_lines_and_a_margin_are_removed(digits):
    ruled = np.zeros((200, 200))
    ruled[5::30, :] = ruled[6::30, :] = 0.35  # rulings two pixels thick, across the digit
    ruled[:, 20:22] = 0.4  # the margin
    lined = [on_paper(d, marks=ruled) for d in digits[0][:16]]
    # Where a ruling crosses a stroke, a sliver of the stroke goes with it: measured 0.94-1.0.
    assert agreement(lined, [on_paper(d) for d in digits[0][:16]]).min() > 0.9


def test_a_gradient_of_light_is_flattened(digits):
    gradient = np.linspace(0.45, 1.0, 200)[None, :] * np.ones((200, 1))  # dark on the left
    shaded = [on_paper(d, light=gradient) for d in digits[0][:16]]
    assert agreement(shaded, [on_paper(d) for d in digits[0][:16]]).min() > 0.88  # 0.91-1.0


def test_a_tiny_pixelated_digit_keeps_its_shape(digits):
    tiny = [
        Image.fromarray(255 - d).resize((12, 12), Image.BOX).resize((96, 96), Image.NEAREST)
        for d in digits[0][:16]
    ]
    out = normalised([encoded(np.asarray(picture)) for picture in tiny])
    for image, original in zip(out, digits[0][:16] / 255.0, strict=True):
        assert similarity(image, original) > 0.68  # measured 0.75-0.94 (12 pixels hold less)


def test_a_picture_of_blocks_is_normalised_as_its_own_pixels(digits):
    """A tiny scan enlarged by a whole factor without smoothing is taken back to its pixels."""
    small = [Image.fromarray(255 - d).resize((12, 12), Image.BOX) for d in digits[0][:4]]
    blocks = [small[0].resize((12 * factor, 12 * factor), Image.NEAREST) for factor in (3, 7, 10)]
    own = normalised([encoded(np.asarray(picture)) for picture in small])
    enlarged = normalised([encoded(np.asarray(picture)) for picture in blocks + small[1:]])
    np.testing.assert_array_equal(enlarged[:3], np.repeat(own[:1], 3, axis=0))
    np.testing.assert_array_equal(enlarged[3:], own[1:])


def test_only_whole_enlargements_count_as_blocks(digits):
    def block(image: np.ndarray, axis: int) -> int:
        return int(_block(tf.constant(image, tf.float32)[..., None], axis))

    digit = digits[0][0]
    assert block(digit, 0) == block(digit, 1) == 1
    assert (block(np.repeat(digit, 3, axis=0), 0), block(np.repeat(digit, 3, axis=0), 1)) == (3, 1)
    not_whole = np.asarray(Image.fromarray(digit).resize((100, 100), Image.NEAREST))
    assert block(not_whole, 0) == block(not_whole, 1) == 1  # blocks of 3 and 4 pixels
    edge = np.zeros((30, 30))
    edge[:, 10:] = 1.0  # one change, at a place a factor of 2, 5 and 10 divides; 30 too
    assert block(edge, 1) == 10 and block(edge, 0) == 30  # no change down the rows: any factor


def in_a_line(*digits: np.ndarray, axis: int = 1) -> np.ndarray:
    """MNIST digits (white on black) in a row (`axis` 1) or a column (0), 12 pixels apart,
    with a margin of 8 (ink touching the picture's border would go as a form's next box)."""
    gap = np.zeros((28, 12) if axis == 1 else (12, 28), np.uint8)
    parts = [digits[0]]
    for digit in digits[1:]:
        parts += [gap, digit]
    return np.pad(np.concatenate(parts, axis=axis), 8)


def test_digits_in_a_row_or_a_column_are_several_and_a_digit_in_its_box_is_one(digits):
    """Two or three digits in a row, two in a column, a pair with a speck of dust, a pair cut
    by the picture's border are marked as several digits, and every whole digit stays (a cut
    one goes, as the edge of a form's next box would); a digit alone, or inside what is left of a
    form's box (under half the picture: not a ruling, and kept), is one."""
    first, second, third = digits[0][:3]
    pair, column = in_a_line(first, second), in_a_line(first, second, axis=0)
    speck = np.pad(pair, ((0, 0), (30, 0)))
    speck[20:22, 2:4] = 255
    at_the_border = np.pad(pair, ((0, 0), (30, 0)))[:, :-10]  # the second digit cut by it
    box = np.zeros((300, 300))
    box[35:38, 35:165] = box[162:165, 35:165] = box[35:165, 35:38] = box[35:165, 162:165] = 0.9
    several_digits = [in_a_line(first, second, third), pair, column, speck, at_the_border]
    pictures = [encode_png(p) for p in several_digits + [first]] + [on_paper(first, box, side=300)]
    images, several = (part.numpy() for part in decode_digits(tf.constant(pictures)))
    assert several.tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    for image, count, axis in zip(images, (3, 2, 2), (0, 0, 1), strict=False):
        inked = (image[..., 0] > 0.2).any(axis=axis).astype(int)  # columns or rows with ink
        assert len(np.flatnonzero(np.diff(inked) == 1)) + inked[0] == count  # runs of ink
    assert images[6][4:24, 4, 0].min() > 0.1  # the box's left side stays, around the digit


@pytest.mark.parametrize("shape", [(2, 28, 28, 1), (3, 30, 50, 2), (1, 83, 81, 1), (1, 1, 5, 1)])
def test_dilation_is_tensorflows_max_pooling_bit_for_bit(shape):
    pictures = tf.constant(np.random.default_rng(3).normal(size=shape).astype(np.float32))
    for size, stride in (([3, 3], 1), ([7, 7], 1), ([1, 6], 1), ([4, 4], 4)):
        expected = tf.nn.max_pool2d(pictures, size, stride, "SAME").numpy()
        np.testing.assert_array_equal(_dilate(pictures, size, stride).numpy(), expected)


def test_a_long_winding_stroke_is_kept_to_its_ends_and_a_speck_apart_dropped():
    """The digit's group grows from its central cell a few cells per turn of a loop: a stroke
    winding across the picture, many turns long, stays whole (its rows 5 cells apart join
    only at their ends), and a speck apart from it goes (a stroke grown only part way would
    leave a remainder heavy enough to keep everything, the speck too)."""
    stroke = np.zeros((1, 84, 84, 1), np.float32)
    for row in (22, 42, 62):
        stroke[0, row : row + 2, 14:70] = 1.0
    stroke[0, 22:44, 68:70] = stroke[0, 42:64, 14:16] = 1.0  # joined right, then left
    speck = np.zeros_like(stroke)
    speck[0, 8:11, 76:79] = 1.0
    ink, size = tf.constant(stroke + speck), tf.constant([84])
    kept, several = dominant_ink(ink, ink, size, size)
    np.testing.assert_array_equal(kept.numpy(), stroke)
    assert not several.numpy().any()


def test_a_picture_alone_is_normalised_as_in_a_batch_of_its_size(digits):
    """A batch of one is its own canvas, without the loop over pictures: the same result."""
    box = np.zeros((200, 200))
    box[25:28, 25:175] = box[172:175, 25:175] = box[25:175, 25:28] = box[25:175, 172:175] = 0.9
    pictures = [on_paper(d, marks=box) for d in digits[0][:4]] + [encode_png(digits[0][4])]
    together = normalised(pictures[:4])
    for picture, expected in zip(pictures[:4], together, strict=True):
        np.testing.assert_array_equal(normalised([picture])[0], expected)
    np.testing.assert_array_equal(normalised(pictures[4:])[0], normalised([pictures[4]] * 2)[0])


def test_pictures_of_different_sizes_in_a_batch_are_normalised_as_each_alone(digits):
    """Each picture's lines are found at its own thickness (a share of its size) however the
    batch mixes sizes: its box goes, and the result is the picture's alone (to float rounding:
    the batch's canvas is as large as its largest picture)."""
    box = np.zeros((200, 200))
    box[25:28, 25:175] = box[172:175, 25:175] = box[25:175, 25:28] = box[25:175, 172:175] = 0.9

    def shrunk(picture: bytes, side: int) -> bytes:
        return encoded(np.asarray(Image.open(io.BytesIO(picture)).resize((side, side), Image.BOX)))

    sides = (56, 70, 84)  # lines 4, 5 and 6 pixels thick at most
    for digit in digits[0][:3]:
        boxed = [shrunk(on_paper(digit, marks=box), side) for side in sides]
        together = normalised(boxed)
        clean = normalised([shrunk(on_paper(digit), side) for side in sides])
        for side, picture, image, expected in zip(sides, boxed, together, clean, strict=True):
            np.testing.assert_allclose(image, normalised([picture])[0], atol=1e-3)
            assert similarity(image, expected) > 0.98, side
