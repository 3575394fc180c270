import json
import logging
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf
import tf_keras as keras

from components.data.sample import load_sample
from tests.fixtures import PHOTO_PROFILE
from trainer.config import TrainingConfig
from trainer.features import MNIST_CLASS_NAMES
from trainer.preprocessing import decode_photos
from trainer.train import (
    IMAGE_XF,
    channel_scaling,
    cluster_workers,
    cosine_decay,
    shuffle_buffer_size,
    train,
    warm_start_weights,
)

# Logical devices must be configured before TensorFlow starts, hence a fresh interpreter.
MIRRORED_TRAINING = textwrap.dedent(
    """
    import json
    import tensorflow as tf
    import tf_keras

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from components.data.sample import load_sample
    from trainer.config import TrainingConfig
    from trainer.train import IMAGE_XF, distribution_strategy, train

    strategy = distribution_strategy()
    config = TrainingConfig(
        epochs=2, batch_size=16, learning_rate=1e-3, early_stopping_patience=5, seed=0,
        jit_compile=False, ensemble_members=2, label_smoothing=0.1,
    )
    pixels, labels = load_sample(256, seed=0)
    images = tf.cast(pixels[..., None], tf.float32) / 255.0
    dataset = tf.data.Dataset.from_tensor_slices(({IMAGE_XF: images}, labels)).batch(
        config.batch_size * strategy.num_replicas_in_sync
    )
    model, history = train(config, 10, dataset, dataset, strategy)
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "devices": list(strategy.extended.worker_devices),
        "mirrored": isinstance(model.weights[0], tf.distribute.DistributedValues),
        "losses": history.history["loss"],
        "policy": tf_keras.mixed_precision.global_policy().name,
    }))
    """
)


def test_training_mirrors_over_two_logical_cpu_devices():
    completed = subprocess.run(
        [sys.executable, "-c", MIRRORED_TRAINING], capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert [device.rsplit(":", 2)[-2:] for device in result["devices"]] == [
        ["CPU", "0"],
        ["CPU", "1"],
    ]
    assert result["mirrored"]
    assert len(result["losses"]) == 2 and result["losses"][1] < result["losses"][0]
    assert result["policy"] == "float32"  # mixed precision is for GPUs only


def test_learning_rate_decays_along_a_cosine_to_zero():
    schedule = cosine_decay(2e-3, epochs=10)
    rates = [schedule(epoch) for epoch in range(11)]
    assert rates[0] == 2e-3
    assert abs(rates[5] - 1e-3) < 1e-12
    assert rates[10] < 1e-12
    assert all(later < earlier for earlier, later in zip(rates, rates[1:], strict=False))


def test_cluster_workers_reads_vertex_ai_tf_config():
    cluster = {"chief": ["a:2222"], "worker": ["b:2222", "c:2222"]}
    assert cluster_workers(None) == (1, True)
    chief = json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}})
    assert cluster_workers(chief) == (3, True)
    worker = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}})
    assert cluster_workers(worker) == (3, False)
    no_chief = {"worker": ["b:2222", "c:2222"]}
    first = json.dumps({"cluster": no_chief, "task": {"type": "worker", "index": 0}})
    assert cluster_workers(first) == (2, True)


def test_warm_start_reads_the_blessed_models_weights_only_for_the_same_classes(trained_model_dir):
    (version,) = trained_model_dir.iterdir()
    weights = warm_start_weights(str(version), list(MNIST_CLASS_NAMES))
    expected = keras.models.load_model(version, compile=False).get_weights()
    assert len(weights) == len(expected)
    for got, want in zip(weights, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert warm_start_weights(str(version), ["cat", "dog"]) is None
    assert warm_start_weights(None, list(MNIST_CLASS_NAMES)) is None


def one_epoch(digits: int, batch_size: int, learning_rate: float):
    """A dataset of sample digits and a one-epoch, one-network configuration for it."""
    pixels, labels = load_sample(digits, seed=3)
    images = tf.cast(pixels[..., None], tf.float32) / 255.0
    dataset = tf.data.Dataset.from_tensor_slices(({IMAGE_XF: images}, labels)).batch(batch_size)
    config = TrainingConfig(
        epochs=1,
        batch_size=batch_size,
        learning_rate=learning_rate,
        early_stopping_patience=1,
        seed=0,
        jit_compile=False,
        ensemble_members=1,  # as the fixture's model
        label_smoothing=0.1,
    )
    return dataset, config


def test_training_starts_from_the_warm_start_weights(trained_model_dir):
    (version,) = trained_model_dir.iterdir()
    base = keras.models.load_model(version, compile=False)
    dataset, config = one_epoch(256, batch_size=64, learning_rate=0.0)
    strategy = tf.distribute.get_strategy()
    warm, _ = train(config, 10, dataset, dataset, strategy, initial_weights=base.get_weights())
    cold, _ = train(config, 10, dataset, dataset, strategy)
    # With a learning rate of 0 nothing is learned: the trainable weights stay where they began.
    for got, want in zip(warm.trainable_weights, base.trainable_weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert not np.array_equal(cold.trainable_weights[0].numpy(), base.trainable_weights[0].numpy())


def test_the_trainer_logs_its_start_up_time(caplog):
    dataset, config = one_epoch(64, batch_size=32, learning_rate=1e-3)
    # absl's logger, whose level earlier tests in the same worker may have raised.
    with caplog.at_level(logging.INFO, logger="absl"):
        train(config, 10, dataset, dataset, tf.distribute.get_strategy())
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Start-up:")]
    assert len(lines) == 1 and "first training step done" in lines[0]


def test_the_photo_graphs_channel_scaling_is_read_back_exactly(photo_transform_output, photos):
    means, deviations = channel_scaling(photo_transform_output)
    pictures = decode_photos(tf.constant(photos[0]), PHOTO_PROFILE).numpy()
    np.testing.assert_allclose(means, pictures.mean(axis=(0, 1, 2)), rtol=1e-4)
    np.testing.assert_allclose(deviations, pictures.std(axis=(0, 1, 2)), rtol=1e-3)


def test_the_shuffle_buffer_holds_10000_digits_and_fewer_large_photos():
    assert shuffle_buffer_size(4 * 28 * 28) == 10_000
    assert shuffle_buffer_size(4 * 64 * 64 * 3) == 1365  # 64 MiB
    assert shuffle_buffer_size(4 * 512 * 512 * 3) == 1024
