"""`make bench-scale`: how the pipeline's cost grows with the data, from 5,000 to 500,000 digits.

Synthetic data sets are the 5,000-digit sample jittered (each digit shifted, rotated and given
pixel noise afresh), written once as TFRecord shards under outputs/bench/scale/data/ and reused.
For each size and each Beam DirectRunner mode, `make run`'s entry point runs the whole pipeline
with one training epoch in a fresh output folder, while this process samples the memory of the
run's process tree; the figures of interest are each component's wall time, examples/s and peak
memory (RSS of the run and its Beam workers while the component runs), the training epoch's own
time from Keras' log, and the on-disk size of the raw and transformed examples. Results:
outputs/bench/scale.json, scale.md and the log-log chart scale.png.
"""

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import tensorflow as tf
from matplotlib.figure import Figure

from components.data.codecs import encode_png
from components.data.sample import load_sample, make_example
from components.splits import HASH_BUCKETS, TEST, TRAIN
from pipeline.results import run_summary
from pipeline.settings import Settings
from tests.bench.figures import BENCH_DIR, EPOCH, PROGRESS
from trainer.features import IMAGE_HEIGHT, IMAGE_WIDTH, MNIST_CLASS_NAMES

SIZES = (5_000, 50_000, 500_000)
MODES = ("in_memory", "multi_processing")
COMPONENTS = ("ImportExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator")
SHARD_SIZE = 25_000  # digits per TFRecord file (at least two files, so that workers can share)
RUNNING = re.compile(r"^\[\d+/\d+\] (\S+) running\.\.\.$")
FINISHED = re.compile(r"^Pipeline run \S+ finished in (\d+) s")
AFTER = "report and demo"  # make run's work after the pipeline: the run report, the served demo


def jittered(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each digit rotated by up to 12 degrees about the centre, shifted by up to 2 pixels and
    given Gaussian pixel noise (sigma 6 of 255): new pictures of the same digits."""
    count = len(pixels)
    angle = np.deg2rad(rng.uniform(-12, 12, count))
    shift_x, shift_y = rng.uniform(-2, 2, (2, count))
    cos, sin, centre = np.cos(angle), np.sin(angle), (IMAGE_WIDTH - 1) / 2
    zeros = np.zeros(count)
    # Output pixel (x, y) reads input pixel (cos x - sin y + a, sin x + cos y + b).
    transforms = np.stack(
        [
            cos,
            -sin,
            centre * (1 - cos + sin) + shift_x,
            sin,
            cos,
            centre * (1 - sin - cos) + shift_y,
            zeros,
            zeros,
        ],
        axis=1,
    ).astype(np.float32)
    moved = tf.raw_ops.ImageProjectiveTransformV3(
        images=pixels[..., None].astype(np.float32),
        transforms=transforms,
        output_shape=[IMAGE_HEIGHT, IMAGE_WIDTH],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )[..., 0].numpy()
    return np.clip(moved + rng.normal(0, 6, moved.shape), 0, 255).astype(np.uint8)


def synthetic_digits(size: int, data_dir: Path) -> Path:
    """The folder of `size` jittered sample digits in TFRecord shards, written on first use."""
    folder = data_dir / str(size)
    if folder.is_dir():
        return folder
    partial = data_dir / f"{size}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    pixels, labels = load_sample(5_000, seed=0)
    rng = np.random.default_rng(size)
    shards = max(2, math.ceil(size / SHARD_SIZE))
    started = time.monotonic()
    for shard in range(shards):
        indexes = np.arange(shard * size // shards, (shard + 1) * size // shards) % len(labels)
        path = partial / f"synthetic-{shard:05d}-of-{shards:05d}.tfrecord"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for image, label in zip(jittered(pixels[indexes], rng), labels[indexes], strict=True):
                example = make_example(encode_png(image), int(label), MNIST_CLASS_NAMES[label])
                writer.write(example.SerializeToString())
    partial.rename(folder)
    print(f"  wrote {size:,} jittered digits in {time.monotonic() - started:.0f} s", flush=True)
    return folder


def tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and all its descendants (Beam's workers), in bytes."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:  # a worker that just ended
            pass
    return total


def watched_run(output_dir: Path, env: dict[str, str]) -> dict:
    """`make run`'s entry point in a fresh interpreter, its memory sampled every 0.2 s and
    attributed to the component running at the time."""
    lines: list[str] = []
    current: list[str | None] = [None]

    def read(stream) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))
            if running := RUNNING.match(lines[-1]):
                current[0] = running[1]
            elif PROGRESS.match(lines[-1]):
                current[0] = None
            elif FINISHED.match(lines[-1]):
                current[0] = AFTER

    started = time.monotonic()
    run = subprocess.Popen(
        [sys.executable, "-m", "pipeline.run"],
        env={**os.environ, **env, "OUTPUT_DIR": str(output_dir), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    reader = threading.Thread(target=read, args=(run.stdout,))
    reader.start()
    process = psutil.Process(run.pid)
    peaks: dict[str, int] = {}
    while run.poll() is None:
        rss, component = tree_rss(process), current[0]
        if component:
            peaks[component] = max(peaks.get(component, 0), rss)
        peaks["whole run"] = max(peaks.get("whole run", 0), rss)
        time.sleep(0.2)
    reader.join()
    wall_s = time.monotonic() - started
    if run.returncode:
        tail = "\n".join(lines[-40:])
        raise RuntimeError(f"pipeline run in {output_dir} failed:\n{tail}")
    seconds = {m[1]: float(m[2]) for line in lines if (m := PROGRESS.match(line))}
    epoch = next(m for line in lines if (m := EPOCH.match(line)))
    pipeline_s = next(int(m[1]) for line in lines if (m := FINISHED.match(line)))
    return {
        "wall_s": round(wall_s, 1),
        "pipeline_s": pipeline_s,
        "seconds": seconds,
        "peak_rss_mb": {name: round(rss / 2**20) for name, rss in peaks.items()},
        "epoch_steps": int(epoch[1]),
        "epoch_s": round(int(epoch[1]) * int(epoch[2]) / 1000, 1),
    }


def folder_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


def measure(size: int, mode: str, data: Path, work_dir: Path) -> dict:
    output_dir = work_dir / f"{size}-{mode}"
    shutil.rmtree(output_dir, ignore_errors=True)
    env = {
        "DATA_ROOT": str(data),
        "EPOCHS": "1",
        "BEAM_DIRECT_RUNNING_MODE": mode,
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    run = watched_run(output_dir, env)
    summary = run_summary(Settings(output_dir=output_dir).metadata_path)
    buckets = sum(HASH_BUCKETS.values())
    batch_size = Settings().training.batch_size
    examples = {
        "ImportExampleGen": size,
        "StatisticsGen": size,
        "Transform": size,
        "Trainer": size * HASH_BUCKETS[TRAIN] // buckets,
        "Evaluator": summary.test_examples,
    }
    row = {
        "size": size,
        "mode": mode,
        "wall_s": run["wall_s"],
        "pipeline_s": run["pipeline_s"],
        "after_pipeline_peak_rss_mb": run["peak_rss_mb"].get(AFTER),
        "components": {
            name: {
                "s": run["seconds"][name],
                "examples_per_s": round(examples[name] / run["seconds"][name]),
                "peak_rss_mb": run["peak_rss_mb"].get(name),
            }
            for name in COMPONENTS
        },
        "peak_rss_mb": run["peak_rss_mb"]["whole run"],
        "epoch_s": run["epoch_s"],
        "epoch_examples_per_s": round(run["epoch_steps"] * batch_size / run["epoch_s"]),
        "raw_data_mb": folder_mb(data),
        "raw_examples_mb": folder_mb(summary.artifact_uris["ImportExampleGen.Examples"]),
        "transformed_examples_mb": folder_mb(summary.artifact_uris["Transform.Examples"]),
        "test_examples": summary.test_examples,
        "evaluator_split": TEST,
    }
    shutil.rmtree(output_dir)  # 500,000 transformed digits take gigabytes
    return row


def markdown(rows: list[dict], machine: str) -> str:
    head = (
        "| digits | Beam mode | wall (pipeline) | "
        + " | ".join(COMPONENTS)
        + f" | epoch | {AFTER} | peak memory |"
    )
    lines = [
        "# Scaling benchmark (`make bench-scale`)",
        "",
        f"{machine}. One training epoch per run; each cell: seconds, examples/s, peak memory",
        "(RSS of the run and its Beam workers while the component ran, MB). 'epoch' is the",
        "training epoch alone (Keras' step time), in seconds and examples/s.",
        "",
        head,
        "|" + "---|" * (len(COMPONENTS) + 6),
    ]
    for row in rows:
        cells = [
            f"{c['s']:.0f} s, {c['examples_per_s']:,}/s, {c['peak_rss_mb']} MB"
            for c in (row["components"][name] for name in COMPONENTS)
        ]
        lines.append(
            f"| {row['size']:,} | {row['mode']} | {row['wall_s']:.0f} s ({row['pipeline_s']} s) | "
            + " | ".join(cells)
            + f" | {row['epoch_s']:.0f} s, {row['epoch_examples_per_s']:,}/s"
            + f" | {row['after_pipeline_peak_rss_mb']} MB | {row['peak_rss_mb']:,} MB |"
        )
    lines += [
        "",
        "On disk (MB): raw TFRecords as written, ExampleGen's output, Transform's output.",
        "",
    ]
    lines += ["| digits | raw data | raw examples | transformed examples |", "|---|---|---|---|"]
    for row in rows:
        if row["mode"] == MODES[0]:
            lines.append(
                f"| {row['size']:,} | {row['raw_data_mb']} | {row['raw_examples_mb']}"
                f" | {row['transformed_examples_mb']} |"
            )
    lines += ["", "Throughput at the largest size over the smallest (1.0 = linear cost):", ""]
    for mode in MODES:
        ours = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["size"])
        if len(ours) > 1:
            smallest, largest = ours[0]["components"], ours[-1]["components"]
            ratios = [
                f"{name} {largest[name]['examples_per_s'] / smallest[name]['examples_per_s']:.2f}"
                for name in COMPONENTS
            ]
            epoch = ours[-1]["epoch_examples_per_s"] / ours[0]["epoch_examples_per_s"]
            lines.append(f"- {mode}: " + ", ".join(ratios) + f", epoch {epoch:.2f}")
    return "\n".join(lines) + "\n"


def chart(rows: list[dict], path: Path) -> None:
    """Examples/s and peak memory against data size, log-log, a line per component and mode."""
    figure = Figure(figsize=(12, 4.5))  # without pyplot: no GUI backend to choose
    speed, memory = figure.subplots(1, 2)
    for mode, style in zip(MODES, ("-", "--"), strict=True):
        ours = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["size"])
        sizes = [r["size"] for r in ours]
        for index, name in enumerate(COMPONENTS):
            color = f"C{index}"
            speed.plot(
                sizes,
                [r["components"][name]["examples_per_s"] for r in ours],
                style,
                marker="o",
                color=color,
                label=f"{name} ({mode})",
            )
        memory.plot(sizes, [r["peak_rss_mb"] for r in ours], style, marker="o", label=mode)
    for axes, label in ((speed, "examples/s"), (memory, "peak memory of the run (MB)")):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("digits")
        axes.set_ylabel(label)
        axes.grid(True, which="both", alpha=0.3)
    speed.legend(fontsize=7)
    memory.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    args = parser.parse_args()
    scale_dir = BENCH_DIR / "scale"
    machine = f"{os.cpu_count()} CPU cores, {psutil.virtual_memory().total / 2**30:.0f} GiB memory"
    rows = []
    for size in args.sizes:
        print(f"{size:,} digits:", flush=True)
        data = synthetic_digits(size, scale_dir / "data")
        for mode in args.modes:
            started = time.monotonic()
            rows.append(measure(size, mode, data, scale_dir / "runs"))
            print(f"  {mode}: {time.monotonic() - started:.0f} s", flush=True)
            (BENCH_DIR / "scale.json").write_text(json.dumps(rows, indent=1))
    (BENCH_DIR / "scale.md").write_text(markdown(rows, machine))
    chart(rows, BENCH_DIR / "scale.png")
    print((BENCH_DIR / "scale.md").read_text())
    print(f"Chart: {BENCH_DIR / 'scale.png'}")


if __name__ == "__main__":
    main()
