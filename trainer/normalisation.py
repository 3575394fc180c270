"""MNIST's normalisation, as TensorFlow ops that run inside the Transform graph (so training,
TFMA and both serving signatures share them): any picture of one digit, as people send it, to
the form the network knows.

MNIST's digits are white ink on black, the ink's bounding box scaled to 20 pixels on its longer
side (aspect kept) and placed in 28x28 with its centre of mass at the centre. A phone photo of
dark ink on unevenly lit paper, a digit in a form's box or on ruled paper, a small digit
off-centre on a web page's canvas or a scan of grey paper is none of that. In order:
1. the paper's light is estimated at a large scale and divided out (shadows, gradients);
2. the paper's noise, measured on the picture's border, is cut off;
3. rulings and box borders (thin marks along half the picture) are removed, with a box's
   corners;
4. the digit is the dominant, central group of ink: specks, remains and leftover lines far
   from it go (and where that group is itself a speck, there is no digit);
5. the ink's box is scaled and centred as MNIST did, and the middle of its strokes made full.
A digit already in MNIST's form passes unchanged (trainer/normalisation_test.py measures how
close, and each step on constructed pictures).

Each picture is first taken back to its own pixels when it is a whole-factor enlargement
without smoothing (a tiny scan zoomed in), shrunk to fit MAX_SIDE and measured (`fit`, one
picture at a time, as they differ in size); the batch then shares one canvas as large as its
largest picture, and everything after that works on the whole batch at once, which keeps
serving large batches fast.
"""

import tensorflow as tf

from trainer.features import IMAGE_HEIGHT, IMAGE_WIDTH

MAX_SIDE = 84  # pictures are shrunk to fit this square first (area averaging): bounded work
# A picture made of square blocks, a tiny scan enlarged without smoothing up to this many
# times, is first taken back to its own pixels: enlarged smoothly from there, the digit is
# read as well as the tiny picture itself, where its blocks' edges would be taken for strokes.
MAX_BLOCK = 32
DIGIT_SIDE = 20  # the ink's longer side in MNIST
MIN_CONTRAST = 0.15  # ink must differ this much from the paper; less is no ink at all
INK_LEVEL = 0.05  # share of the ink's range above which a pixel counts for the ink's box
# MNIST's strokes are full ink along their middle. A thin or faint stroke shrunk from a large
# picture is grey there, with only a pixel or two full: the strongest STROKE_CORE of a digit's
# ink pixels are made at least CORE_INK (stretched by at most 1 / MIN_CORE_LEVEL), which
# leaves MNIST's own digits as they are.
STROKE_CORE, CORE_INK, MIN_CORE_LEVEL = 0.3, 0.9, 0.4
NOISE_MARGIN = 3.0  # standard deviations of the paper's noise cut off the ink
NEIGHBOURHOOD_INK = 0.1  # a pixel counts for the box only when its 3x3 neighbourhood has ink
# The ink's longer side must span this share of the picture, and these pixels, to be a digit.
MIN_INK_SHARE, MIN_INK_SIDE = 0.1, 4.0
# The paper's light is estimated on cells of PAPER_CELL pixels as the brightest paper within
# PAPER_WINDOWS cells (28 and 20 pixels of 84): wider than strokes, narrower than shadows.
PAPER_CELL, PAPER_WINDOWS = 4, (7, 5)
MARK_LEVEL = 0.2  # share of the strongest ink above which a pixel is a mark (line, stroke)
# Thin marks along half a row or column of the picture are a ruling or a box's border, not a
# stroke; unless they are nearly all the ink (a long, thin "1" alone), they are removed.
LINE_FILL, LINE_SHARE = 0.5, 0.9
LINE_MARK_LEVEL = 0.05  # share of the strongest ink above which a pixel may be a ruling
LINE_THICKNESS = 0.07  # of the picture's extent: marks this thick across are strokes
LINE_MIN_EXTENT = 56  # pixels: smaller pictures are looked at as a digit alone
BOX_LINES = 3  # lines each way of a form's box: its two edges, and the next box's edge
DIGIT_LINE = 1.2  # a line left over is longer than the digit by this much (a box's edge)
# The digit is the dominant, central ink: marks are grouped on cells of COMPONENT_CELL pixels
# (so strokes a cell apart, or cut by a removed line, stay together); ink outside the
# group of the dominant cell is dropped when it is little (specks, the remains of a box), and
# kept when it weighs as much as STRAY_SHARE of the digit (a second digit: the answer should
# then be unsure, not confident).
COMPONENT_CELL, STRAY_SHARE = 4, 0.15
# The dominant group's own marks must span this share of a digit's least side (`_digit_side`):
# specks of dust far apart, each kept as the other's stray, span a digit's box between them,
# but none of them is a stroke.
GROUP_SHARE = 0.5
# Groups grow this many cells between checks of whether they still grow: a loop's turn costs
# more than a step, and a digit takes a few steps on a 7x7 grid of cells (a 28-pixel picture).
GROWTH_STEPS = 4
POOLED_BATCH = 16  # pictures: larger batches dilate by pooling (`_dilate`)


def _ring(image: tf.Tensor) -> tf.Tensor:
    """The outermost pixels of [H, W, 1] images, as a vector."""
    return tf.concat([image[0, :, 0], image[-1, :, 0], image[:, 0, 0], image[:, -1, 0]], axis=0)


def _block(image: tf.Tensor, axis: int) -> tf.Tensor:
    """The largest factor up to MAX_BLOCK by which [H, W, 1] `image` is an enlargement without
    smoothing along `axis` (0 rows, 1 columns): one that divides its extent and every place
    where the picture changes along it; 1 for any picture of real detail."""
    length = tf.shape(image)[axis]
    steps = tf.experimental.numpy.diff(image, axis=axis) != 0
    changes = tf.reduce_any(steps, axis=[1 - axis, 2])  # between pixel i and i + 1
    places, factors = tf.range(1, length), tf.range(2, MAX_BLOCK + 1)
    fits = tf.reduce_all((places % factors[:, None] == 0) | ~changes, axis=1)
    fits &= length % factors == 0
    return tf.reduce_max(tf.where(fits, factors, 1))


def _within_max_side(image: tf.Tensor) -> tf.Tensor:
    """[H, W, 1] `image` taken back to its own pixels when it is made of blocks, then shrunk
    to fit MAX_SIDE (area averaging, aspect kept)."""
    image = tf.ensure_shape(image[:: _block(image, 0), :: _block(image, 1)], [None, None, 1])
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.minimum(1.0, MAX_SIDE / tf.reduce_max(size))
    fitted = tf.minimum(MAX_SIDE, tf.maximum(1, tf.cast(tf.round(size * scale), tf.int32)))
    return tf.cond(
        scale < 1.0, lambda: tf.image.resize(image, fitted, method="area"), lambda: image
    )


def fit(image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A grayscale float image [H, W, 1] in [0, 1], any size, taken back to its own pixels
    when it is made of blocks (`_block`), shrunk to fit MAX_SIDE (aspect kept; never enlarged)
    and shifted so that its paper, the median of its border, is 0 (the batch's canvas is
    padded with zeros, that is with paper). Returns it and [paper level, height, width]:
    `to_mnist_form` needs the absolute light and the picture's extent."""
    # One branch for pictures of MNIST's size or smaller: they are neither looked at for
    # blocks nor shrunk, and a batch of them pays for no more than that branch.
    image = tf.cond(
        tf.reduce_max(tf.shape(image)[:2]) > max(IMAGE_HEIGHT, IMAGE_WIDTH),
        lambda: _within_max_side(image),
        lambda: image,
    )
    image = tf.ensure_shape(image, [None, None, 1])
    border = tf.sort(_ring(image))
    paper = border[tf.size(border) // 2]
    extent = tf.cast(tf.shape(image)[:2], tf.float32)
    return image - paper, tf.concat([[paper], extent], axis=0)


def normalise_light(light: tf.Tensor) -> tf.Tensor:
    """Pictures of one size [N, H, W, 1] (at most MAX_SIDE square), light in [0, 1], to MNIST's
    form: what `fit` and `to_mnist_form` do to decoded pictures, for pictures rendered inside a
    graph (the Trainer's real-world renderings and printed digits)."""
    count, height, width = tf.shape(light)[0], tf.shape(light)[1], tf.shape(light)[2]
    paper = _median(*_border(light, tf.fill([count], height), tf.fill([count], width)))
    extent = tf.cast(tf.stack([height, width]), tf.float32)
    measures = tf.concat([paper[:, None], tf.tile(extent[None], [count, 1])], axis=1)
    return to_mnist_form(light - _per_image(paper), measures)[0]


def _dilate(x: tf.Tensor, size: list[int], stride: int = 1) -> tf.Tensor:
    """`tf.nn.max_pool2d(x, size, stride, "SAME")`, the same values bit for bit, as a
    morphological dilation: on a picture or two, a pooling op costs twice as much (about 45
    against 20 us on a 2-core machine), and one picture takes a dozen of them. Batches of a
    known size over POOLED_BATCH (the Trainer's banks, drawn eagerly) pool: there the pooling
    kernel is 2.5-4x as fast (7 against 18 ms for a 4x1 window on 512 pictures of 64 pixels)."""
    if x.shape[0] is not None and x.shape[0] > POOLED_BATCH:
        return tf.nn.max_pool2d(x, size, stride, "SAME")
    flat = tf.zeros(size + [x.shape[-1]], x.dtype)
    return tf.nn.dilation2d(x, flat, [1, stride, stride, 1], "SAME", "NHWC", [1, 1, 1, 1])


def _erode(x: tf.Tensor, size: list[int]) -> tf.Tensor:
    return -_dilate(-x, size)


def _mean(x: tf.Tensor, size: int) -> tf.Tensor:
    """`tf.nn.avg_pool2d(x, size, 1, "SAME")` (the padding not counted) as sums of shifted
    slices along rows, then columns: TensorFlow's pooling kernel on one channel took 4-6x as
    long on a batch of 64 digits, and these means were a third of the batch's normalisation."""

    def sums(x: tf.Tensor, axis: int) -> tf.Tensor:
        padding = [[0, 0]] * 4
        padding[axis] = [(size - 1) // 2, size // 2]
        padded = tf.pad(x, padding)
        starts = ([0] * axis + [i] + [0] * (3 - axis) for i in range(size))
        return tf.add_n([tf.slice(padded, start, tf.shape(x)) for start in starts])

    ones = tf.ones_like(x[:1])
    return sums(sums(x, 1), 2) / sums(sums(ones, 1), 2)


def _per_image(values: tf.Tensor) -> tf.Tensor:
    return values[:, None, None, None]


def _slope(canvas: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """[N, H, W, 1] the plane through the medians of each picture's four sides: a gradient of
    light across the page (the median of a side is the plane's value at its middle)."""
    sides, valid = _border(canvas, height, width)  # top, bottom, left, right
    lengths = [tf.shape(canvas)[2]] * 2 + [tf.shape(canvas)[1]] * 2
    top, bottom, left, right = (
        _median(values, is_side)
        for values, is_side in zip(
            tf.split(sides, lengths, axis=1), tf.split(valid, lengths, axis=1), strict=True
        )
    )
    height, width = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    ys = tf.cast(tf.range(tf.shape(canvas)[1]), tf.float32)[None, :] - (height[:, None] - 1) / 2
    xs = tf.cast(tf.range(tf.shape(canvas)[2]), tf.float32)[None, :] - (width[:, None] - 1) / 2
    down = (bottom - top) / tf.maximum(height - 1, 1.0)
    across = (right - left) / tf.maximum(width - 1, 1.0)
    middle = (top + bottom + left + right) / 4
    plane = (
        middle[:, None, None] + (down[:, None] * ys)[:, :, None] + (across[:, None] * xs)[:, None]
    )
    return plane[..., None]


def flat_ink(
    canvas: tf.Tensor, paper: tf.Tensor, inside: tf.Tensor, height: tf.Tensor, width: tf.Tensor
) -> tf.Tensor:
    """The ink, positive, on paper of 0, whatever the light: inverted where the ink is darker
    than the paper (the extreme of 3x3 means farther from the paper, or from its `_slope`, is
    the ink: under a steep gradient, the bright side of the page lies farther from the page's
    median than dark ink does; single noisy pixels do not decide). The paper's own light is
    estimated at a large scale (an opening wider than strokes) and divided out for dark ink (a
    stroke in a shadow is as dark, relative to its paper, as one in the light) or subtracted
    for light ink on dark paper."""
    smoothed = _mean(canvas, 3)  # the paper is 0 here

    def darker(level: tf.Tensor) -> tf.Tensor:
        level = tf.where(inside, level, 0.0)
        return -tf.reduce_min(level, axis=[1, 2, 3]) > tf.reduce_max(level, axis=[1, 2, 3])

    # Either way: a box's edge along a side tilts the sides' plane the wrong way.
    dark_ink = darker(smoothed) | darker(smoothed - _slope(canvas, height, width))
    light = canvas + _per_image(paper)  # absolute light; the padding is paper
    flipped = tf.where(_per_image(dark_ink), -light, light)  # the ink is the bright side
    cells = tf.nn.avg_pool2d(flipped, PAPER_CELL, PAPER_CELL, "SAME")
    inks = []
    for window in PAPER_WINDOWS:  # the bright ink opened away, at two scales
        background = _dilate(_erode(cells, [window, window]), [window, window])
        background = _mean(background, 3)
        background = tf.image.resize(background, tf.shape(canvas)[1:3])
        ink = flipped - background
        inks.append(tf.where(_per_image(dark_ink), ink / tf.maximum(-background, 0.1), ink))
    # A stroke is ink at both scales; a soft shadow narrower than the wide window is ink only
    # there, as the narrow window follows it.
    return tf.where(inside, tf.minimum(*inks), 0.0)


def _median(values: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """The median of each row of `values` [N, K] over its `valid` entries."""
    ordered = tf.sort(tf.where(valid, values, float("inf")), axis=1)
    middle = tf.reduce_sum(tf.cast(valid, tf.int32), axis=1) // 2
    return tf.gather(ordered, middle, batch_dims=1)


def _border(images: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tuple:
    """The outermost pixels of each picture [N, H, W, 1] (its own `height` and `width` of the
    shared canvas), as values [N, 2W + 2H] and whether each is the picture's."""
    rows = tf.concat(
        [images[:, 0, :, 0], tf.gather(images[..., 0], height - 1, batch_dims=1)], axis=1
    )
    columns = tf.transpose(images[..., 0], [0, 2, 1])
    columns = tf.concat([columns[:, 0], tf.gather(columns, width - 1, batch_dims=1)], axis=1)
    valid_rows = tf.tile(tf.range(tf.shape(images)[2])[None] < width[:, None], [1, 2])
    valid_columns = tf.tile(tf.range(tf.shape(images)[1])[None] < height[:, None], [1, 2])
    return tf.concat([rows, columns], axis=1), tf.concat([valid_rows, valid_columns], axis=1)


def paper_and_noise(ink: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tuple:
    """The flattened paper's level and noise [N] from each picture's border: its median and
    median absolute deviation (so a ruling or a box crossing the border moves neither)."""
    border, valid = _border(ink, height, width)
    level = _median(border, valid)
    deviation = _median(tf.abs(border - level[:, None]), valid)
    return level, deviation / 0.6745  # a normal distribution's MAD is 0.6745 sigma


def _straight_lines(
    marks: tf.Tensor, extent: tf.Tensor, across: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Marks on rows (`across` 1) or columns (2) that are thin across (under LINE_THICKNESS of
    the picture's extent) and run along LINE_FILL of it, a pixel of slant allowed: rulings and
    box borders, not the strokes of a digit (shorter, or thick). None in pictures smaller than
    LINE_MIN_EXTENT: a digit alone, as MNIST's 28 pixels, whose strokes are that thin.
    Returns them and which rows [N, H, 1, 1] (or columns [N, 1, W, 1]) they run along."""
    slant = [3, 1] if across == 1 else [1, 3]
    # Pictures under LINE_MIN_EXTENT have no lines, so no thinner opening counts.
    thinnest, widest = (round(LINE_THICKNESS * side) for side in (LINE_MIN_EXTENT, MAX_SIDE))
    thickness = tf.clip_by_value(tf.round(LINE_THICKNESS * extent), thinnest, widest)
    strokes = tf.zeros_like(marks)
    for pixels in range(thinnest, widest + 1):  # each picture takes its own thickness's opening
        window = [pixels, 1] if across == 1 else [1, pixels]
        strokes += _opening_where(marks, window, thickness == pixels)
    thin = _dilate(marks * (1.0 - strokes), slant) * (1.0 - strokes)  # strokes stay whole
    fill = tf.reduce_sum(thin, axis=3 - across, keepdims=True) / _per_image(extent)
    along = tf.cast((fill >= LINE_FILL) & _per_image(extent >= LINE_MIN_EXTENT), tf.float32)
    return thin * along, along


def _opening_where(marks: tf.Tensor, window: list[int], chosen: tf.Tensor) -> tf.Tensor:
    """The opening of `marks` [N, H, W, 1] by `window` in the `chosen` [N] pictures, 0 in the
    others; not computed at all where none is chosen: a batch's pictures mostly share one
    size, and so one thickness (a request's picture, the Trainer's banks of 64-pixel ones)."""
    return tf.cond(
        tf.reduce_any(chosen),
        lambda: _per_image(tf.cast(chosen, tf.float32)) * _dilate(_erode(marks, window), window),
        lambda: tf.zeros_like(marks),
    )


def _bands(along: tf.Tensor) -> tf.Tensor:
    """[N] how many separate runs of rows (or columns) `along` [N, H, 1, 1] marks."""
    along = tf.reshape(along, [tf.shape(along)[0], -1])
    return along[:, 0] + tf.reduce_sum(tf.nn.relu(along[:, 1:] - along[:, :-1]), axis=1)


def without_lines(ink: tf.Tensor, marks: tf.Tensor, height: tf.Tensor, width: tf.Tensor):
    """`ink` without rulings and box borders (`_straight_lines`), and without a box's corners
    where its lines are few (BOX_LINES each way: across each line, the other one is as thick
    as a stroke, so neither removes their crossing; on ruled or squared paper, strokes cross
    the many lines' crossings too); unchanged when lines hold nearly all the ink (a long,
    thin "1" alone)."""
    rows, on_rows = _straight_lines(marks, tf.cast(width, tf.float32), across=1)
    columns, on_columns = _straight_lines(marks, tf.cast(height, tf.float32), across=2)
    a_box = (_bands(on_rows) <= BOX_LINES) & (_bands(on_columns) <= BOX_LINES)
    corners = marks * on_rows * on_columns * _per_image(tf.cast(a_box, tf.float32))
    lines = tf.maximum(tf.maximum(rows, columns), corners)
    kept = ink * (1.0 - lines)
    total = tf.reduce_sum(ink, axis=[1, 2, 3])
    mostly_lines = tf.reduce_sum(kept, axis=[1, 2, 3]) < (1.0 - LINE_SHARE) * total
    return tf.where(_per_image(mostly_lines), ink, kept)


def dominant_ink(
    ink: tf.Tensor, marks: tf.Tensor, height: tf.Tensor, width: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """`ink` reduced to the group of marks around its dominant, central cell: other groups that
    touch the picture's border (the edge of the next box on a form, a shadow's rim) go, and
    the rest goes too unless it weighs STRAY_SHARE of the digit or more (a second digit).
    Nothing stays where the group's own marks span under GROUP_SHARE of a digit's (a speck).
    Returns it and [N] whether it holds several digits: heavy marks in a row or a column with
    the group (beside it, or above or below it)."""
    cells = _dilate(marks, [COMPONENT_CELL, COMPONENT_CELL], COMPONENT_CELL)
    mass = _mean(tf.nn.avg_pool2d(ink, COMPONENT_CELL, COMPONENT_CELL, "SAME"), 5)
    rows, cols = tf.shape(cells)[1], tf.shape(cells)[2]
    ys = tf.cast(tf.range(rows), tf.float32) / tf.cast(tf.maximum(rows - 1, 1), tf.float32) - 0.5
    xs = tf.cast(tf.range(cols), tf.float32) / tf.cast(tf.maximum(cols - 1, 1), tf.float32) - 0.5
    central = 1.0 - (ys[:, None] ** 2 + xs[None, :] ** 2)  # 1 at the centre, 0.5 at corners
    score = tf.reshape(mass * central[None, :, :, None] * cells, [tf.shape(ink)[0], -1])
    seed = tf.reshape(tf.one_hot(tf.argmax(score, axis=1), rows * cols), tf.shape(cells))
    cell_rows = tf.range(rows)[None, :, None, None]
    cell_cols = tf.range(cols)[None, None, :, None]
    last_row, last_col = (
        _per_image((height - 1) // COMPONENT_CELL),
        _per_image((width - 1) // COMPONENT_CELL),
    )
    border = (cell_rows == 0) | (cell_rows == last_row) | (cell_cols == 0) | (cell_cols == last_col)
    # Both grow together through neighbouring cells of marks: the digit, and what touches the
    # border.
    seeds = tf.concat([seed, tf.cast(border, tf.float32)], axis=3) * cells

    def grow(groups: tf.Tensor) -> tf.Tensor:
        return _dilate(groups, [3, 3]) * cells

    def grow_steps(groups: tf.Tensor, _) -> tuple[tf.Tensor, tf.Tensor]:
        for _ in range(GROWTH_STEPS - 1):
            groups = grow(groups)
        return grow(groups), groups  # equal when the last step added nothing

    def growing(groups: tf.Tensor, previous: tf.Tensor) -> tf.Tensor:
        return tf.reduce_any(groups != previous)

    groups, _ = tf.while_loop(
        growing,
        grow_steps,
        grow_steps(seeds, None),
        maximum_iterations=(rows + cols) // GROWTH_STEPS + 1,
    )
    groups = tf.image.resize(_dilate(groups, [3, 3]), tf.shape(ink)[1:3], method="nearest")
    digit, at_border = groups[..., :1], groups[..., 1:] * (1.0 - groups[..., :1])
    own = marks * digit > 0
    (top, bottom), (left, right) = _bounds(own, axis=1), _bounds(own, axis=2)
    extent = tf.stack([height, width, bottom - top + 1, right - left + 1], axis=1)

    def without_line(region: tf.Tensor) -> tf.Tensor:
        line = _line_like(marks * region > 0, tf.cast(extent, tf.float32))
        return region * (1.0 - _per_image(tf.cast(line, tf.float32)))

    # A straight line left over (two boxes' edges side by side are as thick as a stroke) is
    # neither part of the digit nor another digit.
    at_border = without_line(at_border)
    elsewhere = without_line((1.0 - digit) * (1.0 - groups[..., 1:]))
    # Weighed in marks, not ink: a soft shadow left over is faint however wide it is.
    heavy = STRAY_SHARE * tf.reduce_sum(marks * digit, axis=[1, 2, 3])
    weighty = tf.reduce_sum(marks * elsewhere, axis=[1, 2, 3]) >= heavy
    kept = ink * digit + tf.where(_per_image(weighty), ink * elsewhere, 0.0)
    bound = GROUP_SHARE * _digit_side(tf.cast(tf.maximum(height, width), tf.float32))
    is_digit = tf.cast(tf.maximum(bottom - top, right - left) + 1, tf.float32) >= bound
    # More digits stand in a row or a column with the digit: heavy marks beside its box (level
    # with it) or above or below it (in line with it), not both; what is left of a form's box
    # stands both beside it and above or below it. Marks off both (corners, specks) do not count.
    pixel_ys = tf.range(tf.shape(ink)[1])[None, :, None, None]
    pixel_xs = tf.range(tf.shape(ink)[2])[None, None, :, None]
    level = (pixel_ys >= _per_image(top)) & (pixel_ys <= _per_image(bottom))
    in_line = (pixel_xs >= _per_image(left)) & (pixel_xs <= _per_image(right))

    def weighs(region: tf.Tensor) -> tf.Tensor:
        others = marks * (elsewhere + at_border) * tf.cast(region, tf.float32)
        return tf.reduce_sum(others, axis=[1, 2, 3])

    several = is_digit & (
        (weighs(level & ~in_line) >= heavy) != (weighs(in_line & ~level) >= heavy)
    )
    return tf.where(_per_image(is_digit), kept, 0.0), several


def _line_like(mask: tf.Tensor, extent: tf.Tensor) -> tf.Tensor:
    """[N] whether [N, H, W, 1] `mask` lies within one straight band along a row or a column:
    under twice LINE_THICKNESS of the picture across, and along it LINE_FILL of the picture
    and more than the digit (a box's edge; a "1" beside a digit is as tall as that digit).
    `extent` [N, 4] holds each picture's height and width, then its digit's."""
    (top, bottom), (left, right) = _bounds(mask, axis=1), _bounds(mask, axis=2)
    tall, wide = tf.cast(bottom - top + 1, tf.float32), tf.cast(right - left + 1, tf.float32)
    height, width, digit_height, digit_width = tf.unstack(extent, axis=1)
    across = 2 * LINE_THICKNESS
    return (
        (wide <= across * width) & (tall >= LINE_FILL * height) & (tall > DIGIT_LINE * digit_height)
    ) | (
        (tall <= across * height) & (wide >= LINE_FILL * width) & (wide > DIGIT_LINE * digit_width)
    )


def _digit_side(extent: tf.Tensor) -> tf.Tensor:
    """[N] the least longer side, in pixels, of a digit's ink in a picture whose longer side is
    `extent` [N] (MIN_INK_SIDE, MIN_INK_SHARE): shorter ink is a speck, a scratch or dust."""
    return tf.maximum(MIN_INK_SIDE, MIN_INK_SHARE * extent)


def _bounds(mask: tf.Tensor, axis: int) -> tuple[tf.Tensor, tf.Tensor]:
    """[N] each picture's first and last row (`axis` 1) or column (2) where [N, H, W, 1] `mask`
    is true; (0, -1) where it is nowhere."""
    along = tf.reduce_any(mask, axis=[3 - axis, 3])
    found = tf.reduce_any(along, axis=1)
    last = tf.shape(along)[1] - 1 - _first_true(tf.reverse(along, [1]))
    return tf.where(found, _first_true(along), 0), tf.where(found, last, -1)


def white_ink_on_black(canvas: tf.Tensor, measures: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Pictures from `fit` on one zero-padded canvas [N, H, W, 1], with their measures [N, 3],
    as white ink on black: the paper flattened, its noise (NOISE_MARGIN standard deviations)
    cut off, rulings, box borders and stray marks removed; then stretched so that the ink is 1.
    All zeros where ink and paper barely differ. Returns it and [N] whether it holds several
    digits (`dominant_ink`)."""
    height, width = tf.cast(measures[:, 1], tf.int32), tf.cast(measures[:, 2], tf.int32)
    inside = (tf.range(tf.shape(canvas)[1])[None, :, None, None] < _per_image(height)) & (
        tf.range(tf.shape(canvas)[2])[None, None, :, None] < _per_image(width)
    )
    ink = flat_ink(canvas, measures[:, 0], inside, height, width)
    level, noise = paper_and_noise(ink, height, width)
    ink = tf.where(inside, tf.maximum(ink - _per_image(level + NOISE_MARGIN * noise), 0.0), 0.0)
    strongest = tf.reduce_max(_mean(ink, 3), axis=[1, 2, 3], keepdims=True)
    faint = LINE_MARK_LEVEL * strongest  # faint rulings are marks too
    ink = tf.cond(  # skipped where every picture is small: batches of MNIST-sized digits
        tf.reduce_any(tf.maximum(height, width) >= LINE_MIN_EXTENT),
        lambda: without_lines(ink, tf.cast(ink > faint, tf.float32), height, width),
        lambda: ink,
    )
    marks = tf.cast(ink > MARK_LEVEL * strongest, tf.float32)
    ink, several = dominant_ink(ink, marks, height, width)
    contrast = tf.reduce_max(ink, axis=[1, 2, 3], keepdims=True)
    stretched = tf.clip_by_value(ink / tf.maximum(contrast, 1e-6), 0.0, 1.0)
    inked = contrast >= MIN_CONTRAST
    return tf.where(inked, stretched, 0.0), several & inked[:, 0, 0, 0]


def _first_true(mask: tf.Tensor) -> tf.Tensor:
    return tf.argmax(tf.cast(mask, tf.int32), axis=1, output_type=tf.int32)


def to_mnist_form(canvas: tf.Tensor, measures: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Pictures from `fit` on one zero-padded canvas [N, H, W, 1], with their measures [N, 3],
    to [N, 28, 28, 1] in MNIST's form, all zeros where there is no ink (a blank page, an empty
    photo); and [N] whether each holds several digits (then it shows them all, scaled as one)."""
    canvas_height, canvas_width = tf.shape(canvas)[1], tf.shape(canvas)[2]
    ink, several = white_ink_on_black(canvas, measures)
    # Lone pixels (the paper's noise beyond the margin, dust) do not stretch the box.
    neighbourhood = _mean(ink, 3)
    mask = (ink > INK_LEVEL) & (neighbourhood > NEIGHBOURHOOD_INK)
    (top, bottom), (left, right) = _bounds(mask, axis=1), _bounds(mask, axis=2)
    height, width = bottom - top + 1, right - left + 1
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
    digits = tf.matmul(tf.matmul(rows, ink[..., 0]), cols, transpose_b=True)  # [N, 28, 28]
    # A speck, a scratch or dust is not a digit: its ink spans too little of the picture.
    digit_sized = side >= _digit_side(tf.maximum(measures[:, 1], measures[:, 2]))
    digits = tf.where(digit_sized[:, None, None], tf.clip_by_value(digits, 0.0, 1.0), 0.0)
    return _full_strokes(digits)[..., None], several & digit_sized


def _full_strokes(digits: tf.Tensor) -> tf.Tensor:
    """[N, 28, 28] digits stretched so that the strongest STROKE_CORE of their ink pixels (over
    INK_LEVEL) are at least CORE_INK, as in MNIST; all zeros stay so."""
    flat = tf.reshape(digits, [tf.shape(digits)[0], -1])
    inked = tf.reduce_sum(tf.cast(flat > INK_LEVEL, tf.float32), axis=1)
    strongest_first = tf.sort(flat, axis=1, direction="DESCENDING")
    core = tf.gather(strongest_first, tf.cast(STROKE_CORE * inked, tf.int32), batch_dims=1)
    level = tf.clip_by_value(core / CORE_INK, MIN_CORE_LEVEL, 1.0)
    return tf.minimum(digits / level[:, None, None], 1.0)


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
