"""Printed text for training, in every machine font (trainer/fonts.py), brought to MNIST's form
by the serving normalisation: each digit in a few sizes and slants (MNIST holds only handwriting;
a printed "1" with its foot and flag, or a closed "4", otherwise looks like another digit), and
random strings of letters, which show no one digit (trained towards the uniform distribution:
trainer/model.py's NOT_ONE_CLASS).
"""

import string

import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image, ImageDraw, ImageFont

from trainer.conditions import CANVAS
from trainer.features import MNIST_CLASS_NAMES
from trainer.fonts import FONT_DIR, font_files
from trainer.model import NOT_ONE_CLASS
from trainer.normalisation import normalise_light

VARIANTS = 3  # sizes and slants of each digit in each font
LETTER_STRINGS = 30  # per font: 3-6 random letters (single letters would look like digits)


def _printed(font_path, text: str, rng: np.random.Generator) -> np.ndarray:
    """Dark `text` on white, CANVAS pixels square (smaller type where it would not fit), light
    in [0, 1]."""
    font = ImageFont.truetype(str(font_path), int(rng.integers(28, 46)))
    left, top, right, bottom = font.getbbox(text)
    if right - left > CANVAS - 4:
        font = font.font_variant(size=max(8, font.size * (CANVAS - 4) // (right - left)))
        left, top, right, bottom = font.getbbox(text)
    image = Image.new("L", (CANVAS, CANVAS), 255)
    position = ((CANVAS - (right - left)) / 2 - left, (CANVAS - (bottom - top)) / 2 - top)
    ImageDraw.Draw(image).text(position, text, font=font, fill=0)
    turned = image.rotate(rng.uniform(-8, 8), Image.BICUBIC, fillcolor=255)
    return np.asarray(turned, dtype=np.float32) / 255.0


def printed_text(class_names: list[str], seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Printed digits and letter strings in MNIST's form, float32 [M, 28, 28, 1], and their
    labels [M] (class ids; NOT_ONE_CLASS for the letters); None where the classes are not the
    ten digits or the machine has no fonts."""
    if sorted(class_names) != sorted(MNIST_CLASS_NAMES):
        return None
    fonts = font_files()
    if not fonts:
        logging.warning("No fonts under %s: training without printed text", FONT_DIR)
        return None
    rng = np.random.default_rng(seed)
    texts = {name: class_names.index(name) for name in MNIST_CLASS_NAMES}
    pictures, labels = [], []
    for font_path in fonts:
        for text, label in texts.items():
            for _ in range(VARIANTS):
                pictures.append(_printed(font_path, text, rng))
                labels.append(label)
        for _ in range(LETTER_STRINGS):
            letters = rng.choice(list(string.ascii_letters), int(rng.integers(3, 7)))
            pictures.append(_printed(font_path, "".join(letters), rng))
            labels.append(NOT_ONE_CLASS)
    digits = normalise_light(tf.constant(np.stack(pictures)[..., None])).numpy()
    strings = labels.count(NOT_ONE_CLASS)
    logging.info(
        "%d printed digits and %d letter strings from %d fonts for training",
        len(labels) - strings,
        strings,
        len(fonts),
    )
    return digits, np.array(labels, dtype=np.int64)
