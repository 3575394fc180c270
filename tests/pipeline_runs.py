"""Runs `make run`'s entry point against a private output folder, as a fork of an interpreter
that imported the pipeline once (pipeline/preloaded.py), not a new one per run."""

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from components.data.codecs import encode_png
from pipeline.preloaded import run_module, start_preloading
from pipeline.settings import PROJECT_ROOT, Settings

# A slice of the sample and few epochs: the whole pipeline in about a minute.
SMALL_RUN = {
    "SAMPLE_SIZE": "1000",
    "EPOCHS": "3",
    "BATCH_SIZE": "16",
    "EVAL_ACCURACY_THRESHOLD": "0.5",
}

# What TFX logs when a Beam step packages the installed TFX as an sdist for remote workers (2 s
# and 49 MB in the temp folder each time), which no local run needs.
TFX_PACKAGES_ITSELF = "Attempting to infer TFX Python dependency for beam"


def run_pipeline(
    output_dir: Path, module: str = "pipeline.run", **overrides: str
) -> subprocess.CompletedProcess:
    """`make run` (or the entry point `module`, e.g. `make schema`'s) with SMALL_RUN settings."""
    env = {**os.environ, **SMALL_RUN, "OUTPUT_DIR": str(output_dir), **overrides}
    start_preloading(["pipeline.run", "pipeline.infer_schema"])
    with tempfile.TemporaryDirectory() as folder:
        stdout, stderr = Path(folder, "stdout"), Path(folder, "stderr")
        stdout.touch()
        stderr.touch()
        status = run_module(module, [], stdout, stderr, env, PROJECT_ROOT, timeout_s=1800)
        return subprocess.CompletedProcess(
            ["python", "-m", module], status, stdout.read_text(), stderr.read_text()
        )


def settings_for(output_dir: Path) -> Settings:
    """The settings of a run with OUTPUT_DIR=`output_dir` (and SMALL_RUN's)."""
    return Settings.from_env({**SMALL_RUN, "OUTPUT_DIR": str(output_dir)})


def served_versions(output_dir: Path) -> dict[str, float]:
    """Version folders in the serving base path that hold a SavedModel (the Pusher copies
    saved_model.pb last), with its mtime."""
    base = settings_for(output_dir).serving_model_dir
    return {v.parent.name: v.stat().st_mtime for v in sorted(base.glob("*/saved_model.pb"))}


def write_classes(root, pixels, labels, counts: dict[str, int]) -> None:
    """Class folders "zero" and "one" with `counts` sample digits each (replacing old ones)."""
    for name, digit in (("zero", 0), ("one", 1)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for index in np.flatnonzero(labels == digit)[: counts[name]]:
            (folder / f"{index}.png").write_bytes(encode_png(pixels[index]))
