import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from trainer.features import IMAGE_SHAPE, PHOTOS, ImageProfile
from trainer.model import (
    NOT_ONE_CLASS,
    RandomStrokes,
    build_augmentation,
    build_model,
    smoothed_crossentropy,
)


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


def test_the_ensemble_answers_with_the_mean_of_its_members():
    model = build_model(num_classes=4, learning_rate=1e-3, members=3)
    images = np.random.rand(6, *IMAGE_SHAPE).astype(np.float32)
    members = [
        layer.predict(images, verbose=0)
        for layer in model.layers
        if layer.name.startswith("member_")
    ]
    assert len(members) == 3 and not np.allclose(members[0], members[1])
    np.testing.assert_allclose(
        model.predict(images, verbose=0), np.mean(members, axis=0), rtol=1e-5
    )


def test_training_lowers_the_loss_and_the_members_stay_distinct():
    model = build_model(num_classes=2, learning_rate=1e-2, members=2, label_smoothing=0.0)
    images = np.random.rand(64, *IMAGE_SHAPE).astype(np.float32)
    labels = (images.mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)
    history = model.fit(images, labels, epochs=3, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    kernels = [m.get_weights()[0] for m in model.layers if m.name.startswith("member_")]
    assert not np.allclose(kernels[0], kernels[1])  # trained apart, from different starts


def test_stroke_variations_stay_images_and_only_in_training():
    images = np.random.rand(64, *IMAGE_SHAPE).astype(np.float32)
    varied = RandomStrokes()(images, training=True).numpy()
    assert varied.shape == images.shape and 0 <= varied.min() and varied.max() <= 1
    strokes_only = RandomStrokes(max_gamma=1.0)(images, training=True).numpy()
    changed = np.abs(strokes_only - images).max(axis=(1, 2, 3)) > 1e-6
    assert 0.2 < changed.mean() < 0.8  # about half keep MNIST's own strokes
    np.testing.assert_array_equal(RandomStrokes()(images, training=False), images)


def test_pictures_of_no_one_class_are_trained_towards_the_uniform_distribution():
    loss = smoothed_crossentropy(10, 0.1)
    labels = tf.constant([NOT_ONE_CLASS, NOT_ONE_CLASS])
    uniform, confident = tf.fill([1, 10], 0.1), tf.constant([[0.91] + [0.01] * 9])
    losses = loss(labels, tf.concat([uniform, confident], axis=0)).numpy()
    assert losses[0] < losses[1]
    assert losses[0] == pytest.approx(np.log(10), rel=1e-4)  # the uniform's own entropy


def test_photo_augmentation_mirrors_only_when_allowed_and_changes_training_batches_only():
    profile = ImageProfile(PHOTOS, 32, 32, 3)
    images = np.random.rand(4, 32, 32, 3).astype(np.float32)
    augment = build_augmentation(profile)
    assert not np.allclose(augment(images, training=True), images)
    np.testing.assert_array_equal(augment(images, training=False), images)
    assert any(isinstance(layer, tf_keras.layers.RandomFlip) for layer in augment.layers)
    unflipped = build_augmentation(profile, flip=False)
    assert not any(isinstance(layer, tf_keras.layers.RandomFlip) for layer in unflipped.layers)
