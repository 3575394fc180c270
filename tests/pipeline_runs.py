"""Runs `make run`'s entry point in a fresh interpreter against a private output folder."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from components.mnist_sample import encode_png
from pipeline import configs

# A slice of the sample and few epochs: the whole pipeline in about a minute.
SMALL_RUN = {
    "SAMPLE_SIZE": "1000",
    "EPOCHS": "3",
    "BATCH_SIZE": "16",
    "EVAL_ACCURACY_THRESHOLD": "0.5",
}


def run_pipeline(
    output_dir: Path, module: str = "pipeline.run", **overrides: str
) -> subprocess.CompletedProcess:
    """`make run` (or the entry point `module`, e.g. `make schema`'s) with SMALL_RUN settings."""
    env = {**os.environ, **SMALL_RUN, "OUTPUT_DIR": str(output_dir), **overrides}
    return subprocess.run(
        [sys.executable, "-m", module],
        cwd=configs.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )


def under(output_dir: Path, default_path: Path) -> Path:
    """Where `default_path` (a path under the default OUTPUT_DIR) lies for `output_dir`."""
    return output_dir / default_path.relative_to(configs.OUTPUT_DIR)


def served_versions(output_dir: Path) -> dict[str, float]:
    """Version folders in the serving base path, with their saved_model.pb's mtime."""
    base = under(output_dir, configs.SERVING_MODEL_DIR)
    return {v.name: (v / "saved_model.pb").stat().st_mtime for v in sorted(base.glob("*"))}


def write_classes(root, pixels, labels, counts: dict[str, int]) -> None:
    """Class folders "zero" and "one" with `counts` sample digits each (replacing old ones)."""
    for name, digit in (("zero", 0), ("one", 1)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for index in np.flatnonzero(labels == digit)[: counts[name]]:
            (folder / f"{index}.png").write_bytes(encode_png(pixels[index]))
