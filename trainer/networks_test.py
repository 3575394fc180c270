import numpy as np
import pytest
import tf_keras

from trainer.features import PHOTOS, ImageProfile
from trainer.model import build_augmentation, build_model
from trainer.networks import Unscaled


@pytest.mark.parametrize(("side", "convolutions"), [(32, 3), (64, 4), (128, 5)])
def test_the_photo_network_grows_a_block_per_halving_of_its_input(side, convolutions):
    profile = ImageProfile(PHOTOS, side, side, 3)
    model = build_model(num_classes=6, learning_rate=1e-3, members=2, profile=profile)
    probabilities = model.predict(np.random.rand(3, side, side, 3).astype(np.float32), verbose=0)
    assert probabilities.shape == (3, 6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    member = model.get_layer("member_0")
    assert sum(isinstance(layer, tf_keras.layers.Conv2D) for layer in member.layers) == convolutions


def test_a_backbone_member_fine_tunes_the_weights_of_its_file(tmp_path):
    """Weights saved as Keras caches ImageNet's (the file Keras names) load into each member."""
    pretrained = tf_keras.applications.MobileNetV3Small(
        input_shape=(32, 32, 3), include_top=False, weights=None, pooling="avg"
    )
    weights = str(tmp_path / "weights_no_top.h5")
    pretrained.save_weights(weights)
    profile = ImageProfile(PHOTOS, 48, 48, 1)  # grey photos go in as three equal channels
    scaling = ([0.5], [0.25])
    model = build_model(
        num_classes=4,
        learning_rate=1e-3,
        members=2,
        profile=profile,
        backbone=("mobilenet_v3_small", weights, scaling),
    )
    for index in range(2):
        member = model.get_layer(f"member_{index}")
        features = member.get_layer(f"member_{index}_mobilenet_v3_small")
        for loaded, saved in zip(features.get_weights(), pretrained.get_weights(), strict=True):
            np.testing.assert_array_equal(loaded, saved)
    probabilities = model.predict(np.random.rand(2, 48, 48, 1).astype(np.float32), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_unscaled_gives_back_pixel_values():
    scaled = np.array([[[[0.0, 1.0, -2.0]]]], np.float32)
    pixels = Unscaled([0.5, 0.4, 0.3], [0.2, 0.1, 0.1])(scaled).numpy()
    np.testing.assert_allclose(pixels[0, 0, 0], [127.5, 127.5, 25.5], rtol=1e-6)


def test_photo_layers_run_under_mixed_precision_as_on_gpus():
    """GPUs train under mixed_float16 (trainer/train.py): the layers get float16 pictures."""
    tf_keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        profile = ImageProfile(PHOTOS, 32, 32, 3)
        images = np.random.rand(2, 32, 32, 3).astype(np.float32)
        for augmentation in (build_augmentation(profile), build_augmentation()):
            picture = (
                images if augmentation.layers[0].name != "random_rotation" else images[..., :1]
            )
            assert augmentation(picture, training=True).dtype == "float16"
        pixels = Unscaled([0.5] * 3, [0.25] * 3)(images)
        assert pixels.dtype == "float16"
        np.testing.assert_allclose(pixels.numpy(), (images * 0.25 + 0.5) * 255, rtol=2e-3)
    finally:
        tf_keras.mixed_precision.set_global_policy("float32")
