"""`make bench-gpu`: training throughput of the Trainer's network and input pipeline on
whatever devices are visible: several GPUs through MirroredStrategy with mixed precision, else the
CPU. `--logical_cpus N` splits the CPU into N devices to try the multi-device path without a GPU.
"""

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--logical_cpus", type=int, default=1)
    parser.add_argument("--jit_compile", action="store_true")
    args = parser.parse_args()

    import tensorflow as tf

    if args.logical_cpus > 1:  # must happen before TensorFlow touches the devices
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus
        )
    import tf_keras as keras

    from components.data.sample import load_sample
    from pipeline.settings import Settings
    from trainer.features import MNIST_CLASS_NAMES
    from trainer.model import build_augmentation, build_model
    from trainer.train import IMAGE_XF, distribution_strategy, use_mixed_precision_on_gpus

    training = Settings.from_env().training
    use_mixed_precision_on_gpus()  # as the Trainer trains
    strategy = distribution_strategy()
    global_batch = training.batch_size * strategy.num_replicas_in_sync
    pixels, labels = load_sample(5000, seed=0)
    augment = build_augmentation()
    dataset = (
        tf.data.Dataset.from_tensor_slices(({IMAGE_XF: pixels[..., None] / 255.0}, labels))
        .repeat()
        .batch(global_batch)
        .map(
            lambda f, y: ({IMAGE_XF: augment(f[IMAGE_XF], training=True)}, y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .prefetch(tf.data.AUTOTUNE)
    )
    with strategy.scope():
        model = build_model(
            len(MNIST_CLASS_NAMES), training.learning_rate, jit_compile=args.jit_compile
        )
    model.fit(dataset, steps_per_epoch=5, epochs=1, verbose=0)  # tracing and warm-up
    started = time.perf_counter()
    model.fit(dataset, steps_per_epoch=args.steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "devices": list(strategy.extended.worker_devices),
                "replicas": strategy.num_replicas_in_sync,
                "precision": keras.mixed_precision.global_policy().name,
                "jit_compile": args.jit_compile,
                "global_batch": global_batch,
                "examples_per_s": round(args.steps * global_batch / seconds),
                "step_ms": round(seconds / args.steps * 1000, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
