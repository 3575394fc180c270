import numpy as np

from trainer.features import IMAGE_SHAPE
from trainer.model import build_augmentation, build_model


def test_model_outputs_a_probability_per_class():
    model = build_model(num_classes=3, learning_rate=1e-3)
    probabilities = model.predict(np.random.rand(5, *IMAGE_SHAPE).astype(np.float32), verbose=0)
    assert probabilities.shape == (5, 3)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_augmentation_changes_training_batches_only():
    augment = build_augmentation()
    images = np.random.rand(4, *IMAGE_SHAPE).astype(np.float32)
    assert augment(images, training=True).shape == images.shape
    assert not np.allclose(augment(images, training=True), images)
    np.testing.assert_array_equal(augment(images, training=False), images)
