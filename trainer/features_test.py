from trainer import features


def test_class_names_cover_every_class():
    assert len(features.CLASS_NAMES) == features.NUM_CLASSES
    assert len(set(features.CLASS_NAMES)) == features.NUM_CLASSES


def test_image_shape_matches_its_parts():
    assert features.IMAGE_SHAPE == (
        features.IMAGE_HEIGHT,
        features.IMAGE_WIDTH,
        features.IMAGE_CHANNELS,
    )


def test_transformed_names_differ_from_raw_names():
    raw = {features.IMAGE_KEY, features.LABEL_KEY}
    transformed = {features.transformed_name(key) for key in raw}
    assert len(transformed) == 2 and not raw & transformed
