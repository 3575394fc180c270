"""`make bench`: every performance claim of the README, measured side by side in one run on
this machine, written to outputs/bench/results.json and results.md.

1. The whole pipeline, cold cache (Beam DirectRunner in_memory, then multi_processing) and warm,
   with each component's time.
2. Accuracy on the pipeline's own test split and on the dev set (5,000 of MNIST's official test
   digits in ../shared/mnist-dev, which no training decision sees; skipped where it is absent):
   the TensorFlow tutorial's MLP, keras.io's mnist_convnet, this project's network in-process,
   and the pushed model of three cold `make run`s (three training seeds). Then an ablation: each
   change to the network and training, three seeds each, with its training and serving cost.
   And the dev digits rendered as people send them and as they really arrive, printed digits
   too (tests/bench/real_world.py): accuracy, calibration error and how often the confidence
   flags the wrong answers, per condition.
3. The Trainer's real input path (transformed TFRecords through tf_dataset_factory) against the
   same model fed from in-memory NumPy arrays.
4. Serving (tests/bench/serving.py): latency in-process, over gRPC and REST; hostile requests;
   small clients beside a heavy one; version churn under load.
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tf_keras import layers
from tfx import version as tfx_version
from tfx.components.trainer.fn_args_utils import DataAccessor
from tfx.components.util import tfxio_utils
from tfx.types import standard_artifacts

from components.data.codecs import encode_png
from components.data.photos import KINDS
from components.splits import TEST, TRAIN, VALIDATION
from pipeline.demo import read_split
from pipeline.results import RunSummary, run_summary
from pipeline.settings import Settings
from pipeline.stats import wilson_interval
from tests.bench import real_world, serving
from trainer.config import TrainingConfig
from trainer.features import (
    CLASS_ID_OUTPUT,
    CONFIDENCE_THRESHOLD,
    IMAGE_SHAPE,
    IMAGES_INPUT,
    MNIST_CLASS_NAMES,
    SERVING_IMAGE_SIGNATURE,
)
from trainer.model import build_model
from trainer.preprocessing import decode_images
from trainer.train import (
    BANK_DIGITS,
    IMAGE_XF,
    distribution_strategy,
    make_dataset,
    network_batches,
    train,
    training_augmentation,
    use_mixed_precision_on_gpus,
)

SETTINGS = Settings.from_env()  # the defaults, or what the environment sets
BENCH_DIR = SETTINGS.output_dir / "bench"
NUM_CLASSES = len(MNIST_CLASS_NAMES)  # the benchmarks run on the MNIST sample
PROGRESS = re.compile(r"^\[\d+/\d+\] (\S+) (?:done|reused from cache) in ([\d.]+) s$")
EPOCH = re.compile(r"^(\d+)/\1 - \d+s - .* - (\d+)ms/step$")  # Keras' line per epoch
START_UP = re.compile(r"Start-up: first training step done ([\d.]+) s")


def machine() -> dict:
    return {
        "date": datetime.date.today().isoformat(),
        "cpu_cores": os.cpu_count(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")] or "none",
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "tfx": tfx_version.__version__,
    }


# 1. The pipeline ---------------------------------------------------------------------------


def timed_pipeline_run(output_dir: Path, module: str = "pipeline.run", **env: str) -> dict:
    """`make run`'s entry point in a fresh interpreter: wall time, each component's time, the
    CPU time of the run and the processes it waited for, and the Trainer's ms/step per epoch."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", module],
        env={**os.environ, "OUTPUT_DIR": str(output_dir), **env},
        capture_output=True,
        text=True,
        check=False,
    )
    wall_s = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode:
        raise RuntimeError(f"pipeline run failed:\n{completed.stderr[-3000:]}")
    lines = completed.stdout.splitlines()
    cpu_s = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {
        "wall_s": round(wall_s, 1),
        "cpu_s": round(cpu_s, 1),
        "components_s": {m[1]: float(m[2]) for line in lines if (m := PROGRESS.match(line))},
        "epoch_ms_per_step": [int(m[2]) for line in lines if (m := EPOCH.match(line))],
    }


def seconds_to_run(command: list[str]) -> float:
    """The quicker of two runs of `command`."""
    times = []
    for _ in range(2):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return round(min(times), 2)


def bench_start_up(pipeline: dict, cold_run_dir: Path) -> dict:
    """Issue 15's start-up figures: the Trainer's time to its first step and its first epoch
    against the steady ones (the cold run), the cold run's CPU over wall time, the cached run
    against the bare `import tfx.v1`, and the client CLI's start."""
    cold = pipeline["cold_in_memory"]
    log = "\n".join(path.read_text() for path in (cold_run_dir / "logs").glob("*.log"))
    first, *steady = cold["epoch_ms_per_step"]
    return {
        "first_step_s": float(START_UP.search(log)[1]),
        "first_epoch_over_steady": round(first / float(np.median(steady)), 2),
        "cold_run_cpu_over_wall": round(cold["cpu_s"] / cold["wall_s"], 2),
        "warm_run_s": pipeline["warm_in_memory"]["wall_s"],
        "import_tfx_s": seconds_to_run([sys.executable, "-c", "import tfx.v1"]),
        "client_help_s": seconds_to_run([sys.executable, "-m", "serving.client", "--help"]),
    }


def summary_of(output_dir: Path) -> RunSummary:
    return run_summary(Settings(output_dir=output_dir).metadata_path)


# Cold runs, each with its own training seed: the pushed models' spread on the dev set.
SEED_RUNS = {
    "cold_in_memory": ("in_memory", SETTINGS.training.seed),
    "cold_multi_processing": ("multi_processing", SETTINGS.training.seed + 1),
    "cold_in_memory_seed_3": ("in_memory", SETTINGS.training.seed + 2),
}


def bench_pipeline(work_dir: Path) -> tuple[dict, dict[str, RunSummary]]:
    results, summaries = {}, {}
    for run, (mode, seed) in SEED_RUNS.items():
        print(f"Pipeline: cold cache, Beam {mode}, training seed {seed}...", flush=True)
        results[run] = timed_pipeline_run(
            work_dir / run, BEAM_DIRECT_RUNNING_MODE=mode, TRAINING_SEED=str(seed)
        )
        summaries[run] = summary_of(work_dir / run)
        if run == "cold_in_memory":
            print("Pipeline: warm cache...", flush=True)
            results["warm_in_memory"] = timed_pipeline_run(
                work_dir / run, BEAM_DIRECT_RUNNING_MODE=mode, TRAINING_SEED=str(seed)
            )
    print("Pipeline: the Kubeflow spec executed here (make kubeflow-local)...", flush=True)
    results["kubeflow_local"] = timed_pipeline_run(
        work_dir / "kubeflow_local", "kubeflow.local_run"
    )
    results["kubeflow_local_over_cold_run"] = round(
        results["kubeflow_local"]["wall_s"] / results["cold_in_memory"]["wall_s"], 2
    )
    return results, summaries


# 2. Accuracy and training time --------------------------------------------------------------


def tutorial_mlp() -> keras.Model:
    """tensorflow.org's 'TensorFlow 2 quickstart for beginners' model."""
    model = keras.Sequential(
        [
            layers.Flatten(input_shape=IMAGE_SHAPE),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def keras_io_convnet() -> keras.Model:
    """keras.io's 'Simple MNIST convnet' example."""
    model = keras.Sequential(
        [
            keras.Input(shape=IMAGE_SHAPE),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    return model


def decoded_split(summary: RunSummary, split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_split(summary.examples_uris, split)
    return decode_images(tf.constant(images)).numpy(), labels


def fitted(model: keras.Model, x, y, **fit_kwargs) -> keras.Model:
    model.fit(x, y, verbose=0, **fit_kwargs)
    return model


def augmented_batches(x, y, config: TrainingConfig) -> tf.data.Dataset:
    """The Trainer's training batches, from arrays instead of TFRecords."""
    dataset = (
        tf.data.Dataset.from_tensor_slices(({IMAGE_XF: x}, y))
        .shuffle(len(y), seed=config.seed)
        .batch(config.batch_size)
    )
    return network_batches(dataset, training_augmentation(config, x[:BANK_DIGITS], y[:BANK_DIGITS]))


class Measured:
    """Accuracy on the pipeline's test split and on the dev set, as bench figures."""

    def __init__(self, summary: RunSummary, dev: tuple[np.ndarray, np.ndarray] | None):
        self.test_x, self.test_y = decoded_split(summary, TEST)
        self.dev = dev

    @staticmethod
    def figure(correct: np.ndarray) -> dict:
        low, high = wilson_interval(int(correct.sum()), len(correct))
        return {
            "accuracy": round(float(correct.mean()), 4),
            "n": len(correct),
            "interval_95": [round(low, 4), round(high, 4)],
        }

    def keras_model(self, model: keras.Model) -> dict:
        figures = {
            "test_split": self.figure(
                model.predict(self.test_x, verbose=0).argmax(1) == self.test_y
            )
        }
        if self.dev is not None:
            dev_x = self.dev[0][..., None].astype(np.float32) / 255.0
            figures["dev_set"] = self.figure(
                model.predict(dev_x, verbose=0).argmax(1) == self.dev[1]
            )
        return figures

    def pushed_model(self, summary: RunSummary) -> dict:
        """Through the exported `serving_image` signature, with PNG bytes: the served path."""
        signature = tf.saved_model.load(str(summary.pushed_path)).signatures[
            SERVING_IMAGE_SIGNATURE
        ]

        def predicted(pngs: list[bytes]) -> np.ndarray:
            return np.concatenate(
                [
                    signature(**{IMAGES_INPUT: tf.constant(pngs[i : i + 500])})[
                        CLASS_ID_OUTPUT
                    ].numpy()
                    for i in range(0, len(pngs), 500)
                ]
            )

        images, labels = read_split(summary.examples_uris, TEST)
        figures = {"test_split": self.figure(predicted(images) == labels)}
        if self.dev is not None:
            pngs = [encode_png(image) for image in self.dev[0]]
            figures["dev_set"] = self.figure(predicted(pngs) == self.dev[1])
        return figures


def forward_p50_ms(model: keras.Model) -> float:
    """The network alone, one image, in a tf.function: its share of serving cost."""
    forward = tf.function(lambda x: model(x, training=False))
    one = tf.zeros([1, *IMAGE_SHAPE])
    return serving.percentiles_ms(serving.timings(lambda: forward(one), 200))["p50_ms"]


def train_in_process(config: TrainingConfig, splits: dict) -> tuple[keras.Model, float]:
    """The Trainer's `train` from arrays: early stopping on the validation split."""
    keras.utils.set_random_seed(config.seed)
    (train_x, train_y), (validation_x, validation_y) = splits[TRAIN], splits[VALIDATION]
    validation = tf.data.Dataset.from_tensor_slices(({IMAGE_XF: validation_x}, validation_y))
    use_mixed_precision_on_gpus()  # as the Trainer trains
    started = time.perf_counter()
    model, _ = train(
        config,
        NUM_CLASSES,
        augmented_batches(train_x, train_y, config),
        validation.batch(256),
        distribution_strategy(),
    )
    return model, time.perf_counter() - started


def bench_accuracy(summaries: dict[str, RunSummary]) -> tuple[dict, dict]:
    """Every model on the same test split and on the dev set; the pushed model of each seed."""
    summary = summaries["cold_in_memory"]
    measured = Measured(summary, real_world.load_dev_set())
    splits = {split: decoded_split(summary, split) for split in (TRAIN, VALIDATION)}
    config = SETTINGS.training
    train_x, train_y = splits[TRAIN]
    one_hot = keras.utils.to_categorical(train_y, NUM_CLASSES)
    candidates = {
        "tutorial MLP (5 epochs)": lambda: fitted(tutorial_mlp(), train_x, train_y, epochs=5),
        "keras.io mnist_convnet (15 epochs, batch 128)": lambda: fitted(
            keras_io_convnet(), train_x, one_hot, batch_size=128, epochs=15
        ),
        "this project's network and training, in-process": lambda: train_in_process(config, splits)[
            0
        ],
    }
    results = {}
    for name, fit in candidates.items():
        print(f"Accuracy: {name}...", flush=True)
        keras.utils.set_random_seed(config.seed)
        started = time.perf_counter()
        model = fit()
        results[name] = {
            **measured.keras_model(model),
            "train_s": round(time.perf_counter() - started, 1),
        }
    for run, (_, seed) in SEED_RUNS.items():
        results[f"pipeline's pushed model, training seed {seed}"] = measured.pushed_model(
            summaries[run]
        )
    return results, {"measured": measured, "splits": splits}


# The changes from the network before issue 10 to today's default, each measured in-process on
# three seeds (plain dev digits: what the real-world training costs MNIST's own form); the
# default itself is the pipeline's three cold runs above.
WITHOUT_REAL_WORLD = {"real_world_share": 0.0, "printed_share": 0.0, "pair_share": 0.0}
ABLATION = {
    "one network, batch 64 (the network before)": {
        "ensemble_members": 1,
        "label_smoothing": 0.0,
        "batch_size": 64,
        **WITHOUT_REAL_WORLD,
    },
    "+ label smoothing 0.1": {
        "ensemble_members": 1,
        "label_smoothing": 0.1,
        "batch_size": 64,
        **WITHOUT_REAL_WORLD,
    },
    "+ batch 32": {
        "ensemble_members": 1,
        "label_smoothing": 0.1,
        "batch_size": 32,
        **WITHOUT_REAL_WORLD,
    },
    "+ ensemble of three networks": WITHOUT_REAL_WORLD,
}


def spread(values: list[float]) -> dict:
    return {
        "mean": round(float(np.mean(values)), 4),
        "std": round(float(np.std(values, ddof=1)), 4),
        "values": [round(v, 4) for v in values],
    }


def bench_ablation(context: dict, accuracy: dict, pipeline: dict, summaries: dict) -> dict:
    measured, splits = context["measured"], context["splits"]
    if measured.dev is None:
        return {}
    default = SETTINGS.training
    results = {}
    for name, change in ABLATION.items():
        dev, train_s, forward = [], [], []
        for seed in (1, 2, 3):
            print(f"Ablation: {name}, seed {seed}...", flush=True)
            config = dataclasses.replace(default, seed=seed, **change)
            model, seconds = train_in_process(config, splits)
            dev.append(measured.keras_model(model)["dev_set"]["accuracy"])
            train_s.append(seconds)
            forward.append(forward_p50_ms(model))
        results[name] = {
            "dev_accuracy": spread(dev),
            "train_s": round(float(np.mean(train_s)), 1),
            "forward_batch_1_p50_ms": round(float(np.median(forward)), 2),
        }
    pushed = [
        accuracy[f"pipeline's pushed model, training seed {seed}"]["dev_set"]["accuracy"]
        for _, seed in SEED_RUNS.values()
    ]
    trainer_s = [pipeline[run]["components_s"].get("Trainer") for run in SEED_RUNS]
    network = keras.models.load_model(summaries["cold_in_memory"].pushed_path, compile=False)
    results["+ real-world renderings, printed text, pairs (default; `make run`, 3 seeds)"] = {
        "dev_accuracy": spread(pushed),
        "trainer_component_s": round(float(np.mean(trainer_s)), 1),
        "forward_batch_1_p50_ms": forward_p50_ms(network),
    }
    return results


# Real-world digits ---------------------------------------------------------------------------


def bench_real_world(summary: RunSummary, dev: tuple[np.ndarray, np.ndarray] | None) -> dict:
    """The pushed model on the dev digits rendered as people send them and as they really
    arrive (tests/bench/real_world.py), beside plain MNIST, through `serving_image`: accuracy,
    calibration error, how often its confidence flags wrong (and right) answers; then, under
    NOT_A_DIGIT, pictures that are not one digit: how often it is flagged or finds no ink."""
    if dev is None:
        return {}
    signature = tf.saved_model.load(str(summary.pushed_path)).signatures[SERVING_IMAGE_SIGNATURE]
    digits, labels = dev
    pictures = real_world.condition_pictures(digits, labels, seed=11)
    pools = {
        "the four kinds, equal shares": list(KINDS),
        real_world.ALL_CONDITIONS: real_world.harder(pictures),
    }
    results = real_world.measure(signature, pictures, labels, pools)
    results[real_world.NOT_A_DIGIT] = real_world.not_digit_rows(signature, digits, seed=11)
    return results


# 3. Trainer input path ----------------------------------------------------------------------


def examples_per_second(model: keras.Model, dataset: tf.data.Dataset, examples: int) -> float:
    model.fit(dataset.take(2), epochs=1, verbose=0)  # warm-up: tracing, first file reads
    started = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    return examples / (time.perf_counter() - started)


def bench_input_path(summary: RunSummary, train_x, train_y) -> dict:
    """One training epoch through each input path, same model, batch and augmentation."""
    config = SETTINGS.training
    transformed = standard_artifacts.Examples()
    transformed.uri = str(summary.artifact_uris["Transform.Examples"])
    transformed.split_names = '["train", "validation"]'
    data_accessor = DataAccessor(
        tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([transformed], []),
        record_batch_factory=None,
        data_view_decode_fn=None,
    )
    tf_transform_output = tft.TFTransformOutput(
        str(summary.artifact_uris["Transform.TransformGraph"])
    )
    files = [str(transformed.uri) + "/Split-train/*"]
    from_tfrecords = make_dataset(
        files,
        data_accessor,
        tf_transform_output,
        config.batch_size,
        training_augmentation(config, train_x[:BANK_DIGITS], train_y[:BANK_DIGITS]),
    )
    from_arrays = augmented_batches(train_x, train_y, config)
    model = build_model(NUM_CLASSES, config.learning_rate)
    rates = {}
    for _ in range(2):  # alternate, so that neither side has the machine to itself
        for name, dataset in (("tfrecords", from_tfrecords), ("numpy", from_arrays)):
            rates.setdefault(name, []).append(examples_per_second(model, dataset, len(train_y)))
    tfrecords, arrays = max(rates["tfrecords"]), max(rates["numpy"])
    return {
        "tfrecords_examples_per_s": round(tfrecords),
        "numpy_examples_per_s": round(arrays),
        "numpy_over_tfrecords": round(arrays / tfrecords, 3),
        "target": "at most 1.15",
    }


# 4. Serving ---------------------------------------------------------------------------------


# Report -------------------------------------------------------------------------------------


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"# Benchmarks, {m['date']}",
        "",
        f"Machine: {m['cpu_cores']} CPU cores, GPU: {m['gpus']}; Python {m['python']}, "
        f"TensorFlow {m['tensorflow']}, TFX {m['tfx']}. Everything below ran in one `make bench`.",
    ]
    if "pipeline" in results:
        p = results["pipeline"]
        names = list(p["cold_in_memory"]["components_s"])
        lines += [
            "",
            "## Whole pipeline (`make run`, 5,000-digit sample)",
            "",
            "| run | wall time (s) | " + " | ".join(names) + " |",
            "|---|---|" + "---|" * len(names),
        ]
        for run, figures in p.items():
            if isinstance(figures, dict):
                cells = " | ".join(str(figures["components_s"].get(n, "")) for n in names)
                lines.append(f"| {run} | {figures['wall_s']} | {cells} |")
        lines.append(
            "\n`make kubeflow-local` over the cold `make run`: "
            f"{p['kubeflow_local_over_cold_run']}x (target: at most 1.5x)."
        )
    if "start_up" in results:
        s = results["start_up"]
        lines += [
            "",
            "## Start-up and cores",
            "",
            f"- Trainer, cold run: first training step {s['first_step_s']} s after the Trainer "
            f"began (target at most 5 s); first epoch {s['first_epoch_over_steady']}x a steady "
            "one (target at most 2x).",
            f"- Cold `make run`: CPU time over wall time {s['cold_run_cpu_over_wall']} "
            "(target at least 1.6 on 2 cores).",
            f"- Cached `make run`: {s['warm_run_s']} s; bare `import tfx.v1`: "
            f"{s['import_tfx_s']} s (target: at most that + 5 s).",
            f"- `python -m serving.client --help`: {s['client_help_s']} s (target at most 1 s).",
        ]
    if "accuracy" in results:
        lines += [
            "",
            "## Accuracy: the pipeline's test split and the dev set (MNIST's official test digits)",
            "",
            "Every model trained on the same train split of the 5,000-digit sample; 95 % Wilson "
            "intervals.",
            "",
            "| model | test split | dev set | training time (s) |",
            "|---|---|---|---|",
        ]
        for name, figures in results["accuracy"].items():
            cells = [
                (
                    f"{f['accuracy']} ({f['interval_95'][0]}-{f['interval_95'][1]}, n={f['n']})"
                    if (f := figures.get(split))
                    else "-"
                )
                for split in ("test_split", "dev_set")
            ]
            lines.append(f"| {name} | {' | '.join(cells)} | {figures.get('train_s', '')} |")
    if results.get("ablation"):
        lines += [
            "",
            "## Ablation on the dev set (3 seeds each: mean, standard deviation)",
            "",
            "| change | dev accuracy | seeds | training (s) | network forward, batch 1 p50 (ms) |",
            "|---|---|---|---|---|",
        ]
        for name, f in results["ablation"].items():
            d = f["dev_accuracy"]
            train_s = f.get("train_s", f"Trainer component {f.get('trainer_component_s')}")
            lines.append(
                f"| {name} | {d['mean']} +- {d['std']} | {d['values']} | {train_s} | "
                f"{f['forward_batch_1_p50_ms']} |"
            )
    if results.get("real_world"):
        r = results["real_world"]
        lines += [
            "",
            "## Digits as people send them and as they really arrive (dev set, pushed model, "
            "`serving_image`)",
            "",
            "ECE: expected calibration error (10 confidence bins). Confidence threshold "
            f"{CONFIDENCE_THRESHOLD}: the share of wrong and of right answers below it (flagged "
            '"not sure"). The pooled rows take every picture of their conditions together.',
            "",
            "| picture | accuracy (95 % interval, n) | ECE | wrong flagged | right flagged |",
            "|---|---|---|---|---|",
        ]
        not_digits = r[real_world.NOT_A_DIGIT]
        for name, f in r.items():
            if name != real_world.NOT_A_DIGIT:
                flagged = [
                    "-" if f[key] is None else f[key] for key in ("wrong_flagged", "right_flagged")
                ]
                lines.append(
                    f"| {name} | {f['accuracy']} ({f['interval_95'][0]}-{f['interval_95'][1]}, "
                    f"n={f['n']}) | {f['ece']} | {flagged[0]} | {flagged[1]} |"
                )
        lines += [
            "",
            "Pictures that are not one digit (made from the dev digits; blank pages: empty, "
            "white, black, grey noise, slivers). Flagged: confidence below the threshold; no "
            "ink: confidence 0. The highest confidence should stay below the threshold.",
            "",
            "| picture | n | flagged | no ink | highest confidence |",
            "|---|---|---|---|---|",
        ]
        for name, f in not_digits.items():
            lines.append(
                f"| {name} | {f['n']} | {f['flagged']:.1%} | {f['no_ink']:.1%} | "
                f"{f['max_confidence']} |"
            )
    if "input_path" in results:
        i = results["input_path"]
        lines += [
            "",
            "## Trainer input path (one epoch, examples per second)",
            "",
            "| TFRecords via tf_dataset_factory | NumPy arrays | ratio (target <= 1.15) |",
            "|---|---|---|",
            f"| {i['tfrecords_examples_per_s']} | {i['numpy_examples_per_s']} | "
            f"{i['numpy_over_tfrecords']} |",
        ]
    if "serving" in results:
        lines += serving.markdown(results["serving"])
    return "\n".join(lines) + "\n"


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    results = {"machine": machine()}
    results["pipeline"], summaries = bench_pipeline(work_dir)
    results["start_up"] = bench_start_up(results["pipeline"], work_dir / "cold_in_memory")
    summary = summaries["cold_in_memory"]
    results["accuracy"], context = bench_accuracy(summaries)
    results["ablation"] = bench_ablation(
        context, results["accuracy"], results["pipeline"], summaries
    )
    results["real_world"] = bench_real_world(summary, context["measured"].dev)
    results["input_path"] = bench_input_path(summary, *context["splits"][TRAIN])
    base_path = summary.pushed_path.parent
    images, _ = read_split(summary.examples_uris, TEST)
    results["serving"] = serving.bench_all(base_path, images, SETTINGS.model_name)

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    (BENCH_DIR / "results.json").write_text(json.dumps(results, indent=2))
    (BENCH_DIR / "results.md").write_text(markdown(results))
    print(markdown(results))
    print(f"Written: {BENCH_DIR / 'results.json'}, {BENCH_DIR / 'results.md'}")
    shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
