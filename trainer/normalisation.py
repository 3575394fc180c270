"""MNIST's normalisation, as TensorFlow ops that run inside the Transform graph (so training,
TFMA and both serving signatures share them): any picture of one digit, as people send it, to
the form the network knows.

MNIST's digits are white ink on black, the ink's bounding box scaled to 20 pixels on its longer
side (aspect kept) and placed in 28x28 with its centre of mass at the centre. A phone photo of
dark ink on white paper, a small digit off-centre on a web page's canvas or a scan of grey
paper is none of that; this brings each of them there, and leaves a digit already in MNIST's
form as it is (trainer/normalisation_test.py measures how close).

Each picture is first shrunk to fit MAX_SIDE and measured (`fit`, one picture at a time, as they
differ in size); the batch then shares one canvas as large as its largest picture, and
everything after that works on the whole batch at once, which keeps serving large batches fast.
"""

import tensorflow as tf

from trainer.features import IMAGE_HEIGHT, IMAGE_WIDTH

MAX_SIDE = 84  # pictures are shrunk to fit this square first (area averaging): bounded work
DIGIT_SIDE = 20  # the ink's longer side in MNIST
MIN_CONTRAST = 0.15  # ink must differ this much from the paper; less is no ink at all
INK_LEVEL = 0.05  # share of the ink's range above which a pixel counts for the ink's box
NOISE_MARGIN = 3.0  # standard deviations of the paper's noise cut off the ink
NEIGHBOURHOOD_INK = 0.1  # a pixel counts for the box only when its 3x3 neighbourhood has ink


def _border(image: tf.Tensor) -> tf.Tensor:
    """The outermost pixels of [H, W, 1] images, as a vector."""
    return tf.concat([image[0, :, 0], image[-1, :, 0], image[:, 0, 0], image[:, -1, 0]], axis=0)


def fit(image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A grayscale float image [H, W, 1] in [0, 1], any size, shrunk to fit MAX_SIDE (aspect
    kept; never enlarged) and shifted so that its paper, the median of its border, is 0 (the
    batch's canvas is padded with zeros, that is with paper). Returns it and the paper's noise,
    the standard deviation of the border."""
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.minimum(1.0, MAX_SIDE / tf.reduce_max(size))
    fitted = tf.minimum(MAX_SIDE, tf.maximum(1, tf.cast(tf.round(size * scale), tf.int32)))
    image = tf.cond(
        scale < 1.0, lambda: tf.image.resize(image, fitted, method="area"), lambda: image
    )
    border = tf.sort(_border(image))
    return image - border[tf.size(border) // 2], tf.math.reduce_std(border)


def white_ink_on_black(canvas: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
    """Inverted where the ink is darker than the paper (the extreme of 3x3 means farther from
    the paper is the ink: single noisy pixels do not decide); the paper and its noise
    (NOISE_MARGIN standard deviations above it) cut off; then stretched so that the ink is 1.
    All zeros where ink and paper barely differ."""
    smoothed = tf.nn.avg_pool2d(canvas, 3, 1, "SAME")  # the paper is 0 here
    darkest = tf.reduce_min(smoothed, axis=[1, 2, 3], keepdims=True)
    brightest = tf.reduce_max(smoothed, axis=[1, 2, 3], keepdims=True)
    ink = tf.where(-darkest > brightest, -canvas, canvas)
    floor = NOISE_MARGIN * noise[:, None, None, None]
    contrast = tf.reduce_max(ink, axis=[1, 2, 3], keepdims=True)
    stretched = tf.clip_by_value((ink - floor) / tf.maximum(contrast - floor, 1e-6), 0.0, 1.0)
    return tf.where(contrast - floor >= MIN_CONTRAST, stretched, 0.0)


def _first_true(mask: tf.Tensor) -> tf.Tensor:
    return tf.argmax(tf.cast(mask, tf.int32), axis=1, output_type=tf.int32)


def to_mnist_form(canvas: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
    """Pictures from `fit` on one zero-padded canvas [N, H, W, 1], with their noise [N], to
    [N, 28, 28, 1] in MNIST's form; all zeros where there is no ink (a blank page, an empty
    photo)."""
    canvas_height, canvas_width = tf.shape(canvas)[1], tf.shape(canvas)[2]
    ink = white_ink_on_black(canvas, noise)
    # Lone pixels (the paper's noise beyond the margin, dust) do not stretch the box.
    neighbourhood = tf.nn.avg_pool2d(ink, 3, 1, "SAME")
    mask = (ink[..., 0] > INK_LEVEL) & (neighbourhood[..., 0] > NEIGHBOURHOOD_INK)
    rows, cols = tf.reduce_any(mask, axis=2), tf.reduce_any(mask, axis=1)
    top, left = _first_true(rows), _first_true(cols)
    height = canvas_height - _first_true(tf.reverse(rows, [1])) - top
    width = canvas_width - _first_true(tf.reverse(cols, [1])) - left
    side = tf.cast(tf.maximum(tf.maximum(height, width), 1), tf.float32)
    scale = DIGIT_SIDE / side  # output pixels per canvas pixel
    # Centre of mass of the ink, in canvas pixels.
    ys = tf.cast(tf.range(canvas_height), tf.float32)
    xs = tf.cast(tf.range(canvas_width), tf.float32)
    weight = tf.maximum(tf.reduce_sum(ink, axis=[1, 2, 3]), 1e-6)
    centre_y = tf.reduce_sum(ink[..., 0] * ys[None, :, None], axis=[1, 2]) / weight
    centre_x = tf.reduce_sum(ink[..., 0] * xs[None, None, :], axis=[1, 2]) / weight
    # As MNIST did: the scaled digit moved by whole output pixels to put its centre at 14, 14.
    shift_y = tf.round(IMAGE_HEIGHT / 2 - (centre_y - tf.cast(top, tf.float32) + 0.5) * scale + 0.5)
    shift_x = tf.round(IMAGE_WIDTH / 2 - (centre_x - tf.cast(left, tf.float32) + 0.5) * scale + 0.5)
    # Output pixel i samples the canvas at top + (i - shift + 0.5) / scale - 0.5, bilinearly,
    # and only inside the ink's box (as in MNIST: not the paper's noise or marks around it):
    # one interpolation matrix per axis, so the whole batch is two matrix products.
    steps = tf.cast(tf.range(IMAGE_HEIGHT), tf.float32)[None, :] / scale[:, None]
    start_y = tf.cast(top, tf.float32) + (0.5 - shift_y) / scale - 0.5
    start_x = tf.cast(left, tf.float32) + (0.5 - shift_x) / scale - 0.5
    rows = _sampling(start_y, steps, top, height, canvas_height)
    cols = _sampling(start_x, steps, left, width, canvas_width)
    digits = tf.einsum("nih,nhw,njw->nij", rows, ink[..., 0], cols)
    return tf.clip_by_value(digits, 0.0, 1.0)[..., None]


def _sampling(start, steps, first, length, size) -> tf.Tensor:
    """[N, 28, size] weights: output pixel i takes canvas pixels around start + steps[i],
    linearly interpolated, and nothing outside pixels first .. first + length - 1."""
    position = start[:, None] + steps
    below = tf.floor(position)
    fraction = (position - below)[..., None]
    below = tf.cast(below, tf.int32)
    weights = tf.one_hot(below, size) * (1 - fraction) + tf.one_hot(below + 1, size) * fraction
    pixels = tf.range(size)[None, None, :]
    inside = (pixels >= first[:, None, None]) & (pixels < (first + length)[:, None, None])
    lower, upper = tf.cast(first, tf.float32) - 0.5, tf.cast(first + length, tf.float32) - 0.5
    on_box = (position > lower[:, None]) & (position < upper[:, None])
    return tf.where(inside & on_box[..., None], weights, 0.0)
