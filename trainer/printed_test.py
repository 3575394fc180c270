"""Printed training text: every digit and letter strings, in MNIST's form, for digit classes."""

import numpy as np
import pytest

from trainer.features import MNIST_CLASS_NAMES
from trainer.fonts import font_files
from trainer.model import NOT_ONE_CLASS
from trainer.printed import LETTER_STRINGS, VARIANTS, printed_text


@pytest.mark.skipif(not font_files(), reason="no TrueType fonts on this machine (make fonts)")
def test_every_digit_in_every_font_and_letter_strings_labelled_as_no_one_class():
    classes = list(reversed(MNIST_CLASS_NAMES))  # class ids follow the data's order
    images, labels = printed_text(classes, seed=0)
    fonts = len(font_files())
    assert images.shape == (fonts * (10 * VARIANTS + LETTER_STRINGS), 28, 28, 1)
    for class_id, name in enumerate(classes):
        assert (labels == class_id).sum() == fonts * VARIANTS, name
    assert (labels == NOT_ONE_CLASS).sum() == fonts * LETTER_STRINGS
    assert (images.max(axis=(1, 2, 3)) > 0.5).all()  # every one has ink, in MNIST's form
    side = (images[..., 0] > 0.05).any(axis=2).sum(axis=1)
    assert np.median(side[labels >= 0]) == 20  # a digit 20 pixels tall, as MNIST's


def test_none_for_classes_other_than_the_ten_digits():
    assert printed_text(["cat", "dog"], seed=0) is None
