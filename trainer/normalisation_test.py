"""MNIST's normalisation on constructed pictures, through the Transform graph's decoding."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.data.codecs import encode_png
from components.data.photos import grey_paper, small_off_centre
from trainer.preprocessing import decode_images


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
    for image, original in zip(out, digits[0][:16] / 255.0, strict=True):
        assert np.corrcoef(image.ravel(), original.ravel())[0, 1] > 0.8
        assert image[original == 0].mean() < 0.05  # the paper's noise is gone


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
