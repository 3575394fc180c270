from trainer import features


def test_mnist_class_names_are_the_digits_in_order():
    assert features.MNIST_CLASS_NAMES == tuple("0123456789")


def test_image_shape_matches_its_parts():
    assert features.IMAGE_SHAPE == (
        features.IMAGE_HEIGHT,
        features.IMAGE_WIDTH,
        features.IMAGE_CHANNELS,
    )


def test_transformed_names_differ_from_raw_names():
    raw = {features.IMAGE_KEY, features.LABEL_KEY, features.CLASS_NAME_KEY}
    transformed = {features.transformed_name(key) for key in raw}
    assert len(transformed) == 3 and not raw & transformed
