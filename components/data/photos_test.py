"""The harder conditions, the printed digits and the pictures that are not one digit: pictures
a decoder reads, the same for a seed, and (for the conditions) the digit's ink in them, not only
paper, lines and light."""

import numpy as np
import pytest
import tensorflow as tf

from components.data import photos
from components.data.photos import (
    CONDITIONS,
    NOT_DIGITS,
    printed_digit,
    render,
    render_pairs,
    render_printed,
)
from components.data.sample import load_sample
from trainer.fonts import FONT_DIR, font_files

needs_fonts = pytest.mark.skipif(
    not font_files(), reason=f"no TrueType fonts under {FONT_DIR} to print digits with"
)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_sample(4, seed=3)[0]


def grey(picture: bytes) -> np.ndarray:
    """The picture as TensorFlow decodes it (as `serving_image` does), channels averaged."""
    image = tf.io.decode_image(picture, expand_animations=False).numpy()
    assert image.ndim == 3 and image.shape[2] in (1, 3)
    return image.astype(np.float64).mean(axis=2)


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_a_condition_decodes_and_repeats_for_a_seed(digits, name):
    pictures = render(digits, CONDITIONS[name], seed=4)
    assert pictures == render(digits, CONDITIONS[name], seed=4)
    assert pictures != render(digits, CONDITIONS[name], seed=5)
    assert all(grey(picture).std() > 10 for picture in pictures)


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_a_condition_shows_the_digit(digits, name):
    """The same draws with and without the digit: the pictures differ by its ink, clearly (by
    more than 30 grey levels) on hundreds of pixels (the fewest seen, a "1" in a small box:
    374)."""
    variant, blank = CONDITIONS[name], np.zeros_like(digits[0])
    for seed, digit in enumerate(digits):
        with_digit = grey(variant(digit, np.random.default_rng(seed)))
        without = grey(variant(blank, np.random.default_rng(seed)))
        assert np.sum(np.abs(with_digit - without) > 30) >= 200


@needs_fonts
def test_printed_digits_decode_repeat_and_show_dark_text():
    labels = np.arange(10)
    pictures = render_printed(labels, seed=7)
    assert pictures == render_printed(labels, seed=7)
    for picture in pictures:
        image = grey(picture)
        assert np.percentile(image, 1) < 100 < np.median(image)  # dark text on light paper


def test_printed_digit_without_fonts_says_so(monkeypatch):
    monkeypatch.setattr(photos, "font_files", lambda: [])
    with pytest.raises(FileNotFoundError, match="No TrueType fonts"):
        printed_digit(3, np.random.default_rng(0))


@pytest.mark.parametrize("name", list(NOT_DIGITS))
def test_a_picture_without_one_digit_decodes_and_repeats_for_a_seed(digits, name):
    pictures = render_pairs(digits, NOT_DIGITS[name], seed=4)
    assert pictures == render_pairs(digits, NOT_DIGITS[name], seed=4)
    assert pictures != render_pairs(digits, NOT_DIGITS[name], seed=5)
    for picture in pictures:
        grey(picture)  # decodes, as `serving_image` decodes it
