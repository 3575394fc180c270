"""A model on the dev digits as pictures really arrive, in one command: plain MNIST, each kind,
other and harder condition of components/data/photos.py, and printed digits, through a
SavedModel's `serving_image` signature (the served path). One row per condition: accuracy with
its 95 % Wilson interval, the expected calibration error, and how often the confidence falls
below the threshold on right and on wrong answers. Then pictures that are not one digit (two
digits, a word, a face, near-blank and blank pages): how often the confidence is below the
threshold, how often no ink is found, and the highest confidence. `make bench` reports the same
rows (tests/bench/figures.py); this measures any model, say a candidate, in a few minutes.

    .venv/bin/python -m tests.bench.real_world SAVED_MODEL_DIR [--count N] [--seed S]
"""

import argparse
import hashlib
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from components.data.codecs import encode_png, read_idx
from components.data.photos import (
    CONDITIONS,
    KINDS,
    NOT_DIGITS,
    OTHERS,
    render,
    render_pairs,
    render_printed,
)
from pipeline.settings import PROJECT_ROOT
from pipeline.stats import wilson_interval
from trainer.calibration import reliability
from trainer.features import (
    CLASS_ID_OUTPUT,
    CONFIDENCE_OUTPUT,
    CONFIDENCE_THRESHOLD,
    IMAGES_INPUT,
    PROBABILITIES_OUTPUT,
    SERVING_IMAGE_SIGNATURE,
)
from trainer.fonts import FONT_DIR, font_files

BATCH = 250  # pictures per call of the signature
PLAIN = "plain MNIST"
PRINTED = "printed digits (machine fonts)"
ALL_CONDITIONS = "all conditions together"
NOT_A_DIGIT = "not a digit"  # bench_real_world's key for the rows of not_digit_rows
BLANK = "blank pages"
OUTPUTS = (CLASS_ID_OUTPUT, CONFIDENCE_OUTPUT, PROBABILITIES_OUTPUT)  # what the rows need

# The dev set: 5,000 of MNIST's official test digits, for measurement only (never trained on,
# never copied into the repository). Absent elsewhere: its figures are then left out.
DEV_SET = Path(os.environ.get("DEV_SET", PROJECT_ROOT.parent / "shared" / "mnist-dev"))
DEV_FILES = {
    "dev-images-idx3-ubyte.gz": "2a09c50e22152fffcd4c84ede8ed15ccae5548c36a5cd6ecb7e75de9217515f5",
    "dev-labels-idx1-ubyte.gz": "f91f509fd35f70a16fcc81994bc8bac5119573723a4a87604ebbb850980f376e",
}


def load_dev_set() -> tuple[np.ndarray, np.ndarray] | None:
    """The dev digits, uint8 [N, 28, 28], and labels, checked against their SHA-256."""
    if not all((DEV_SET / name).is_file() for name in DEV_FILES):
        print(f"No dev set in {DEV_SET}: its figures are left out.", flush=True)
        return None
    for name, digest in DEV_FILES.items():
        if hashlib.sha256((DEV_SET / name).read_bytes()).hexdigest() != digest:
            raise ValueError(f"{DEV_SET / name} is not the expected file (SHA-256 differs)")
    return tuple(read_idx(DEV_SET / name) for name in DEV_FILES)


def condition_pictures(digits: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, list[bytes]]:
    """Every digit (uint8 [N, 28, 28]) plain as PNG, as each of photos' KINDS, OTHERS and
    CONDITIONS, and its label printed in a machine font (left out where there are no fonts)."""
    pictures = {PLAIN: [encode_png(digit) for digit in digits]}
    for name, variant in {**KINDS, **OTHERS, **CONDITIONS}.items():
        print(f"Real-world digits: rendering {name}...", flush=True)
        pictures[name] = render(digits, variant, seed)
    if font_files():
        pictures[PRINTED] = render_printed(labels, seed)
    else:
        print(f"No TrueType fonts under {FONT_DIR}: no printed digits.", flush=True)
    return pictures


def harder(pictures: dict[str, list[bytes]]) -> list[str]:
    """The conditions pooled as ALL_CONDITIONS: photos' CONDITIONS and the printed digits."""
    return [name for name in pictures if name in CONDITIONS or name == PRINTED]


def answers(signature, pictures: list[bytes]) -> dict[str, np.ndarray]:
    """The signature's class ids, confidences and probabilities for the pictures."""
    outputs = [
        signature(**{IMAGES_INPUT: tf.constant(pictures[i : i + BATCH])})
        for i in range(0, len(pictures), BATCH)
    ]
    return {key: np.concatenate([output[key].numpy() for output in outputs]) for key in OUTPUTS}


def figures(outputs: dict[str, np.ndarray], labels: np.ndarray) -> dict:
    """A row: accuracy (95 % Wilson interval), expected calibration error, and the shares of
    right and of wrong answers the confidence flags (below CONFIDENCE_THRESHOLD)."""
    right = outputs[CLASS_ID_OUTPUT] == labels
    flagged = outputs[CONFIDENCE_OUTPUT] < CONFIDENCE_THRESHOLD
    low, high = wilson_interval(int(right.sum()), len(right))
    return {
        "accuracy": round(float(right.mean()), 4),
        "n": len(right),
        "interval_95": [round(low, 4), round(high, 4)],
        "ece": round(reliability(outputs[PROBABILITIES_OUTPUT], labels)[1], 4),
        "right_flagged": round(float(flagged[right].mean()), 3) if right.any() else None,
        "wrong_flagged": round(float(flagged[~right].mean()), 3) if (~right).any() else None,
    }


def measure(
    signature,
    pictures: dict[str, list[bytes]],
    labels: np.ndarray,
    pools: dict[str, list[str]] | None = None,
) -> dict[str, dict]:
    """A row per condition (each condition's pictures show `labels`, in order), then a row per
    pool: the answers of its conditions together, so the model runs once per picture."""
    outputs = {}
    for name, condition in pictures.items():
        print(f"Real-world digits: measuring {name}...", flush=True)
        outputs[name] = answers(signature, condition)
    rows = {name: figures(condition, labels) for name, condition in outputs.items()}
    for pool, names in (pools or {}).items():
        together = {key: np.concatenate([outputs[name][key] for name in names]) for key in OUTPUTS}
        rows[pool] = figures(together, np.tile(labels, len(names)))
    return rows


def table(rows: dict[str, dict]) -> str:
    """The rows as fixed-width text."""
    lines = [
        f"{'condition':<34} {'accuracy':>8}  {'95 % interval':<13}  {'ECE':>6}  "
        f"{'right flagged':>13}  {'wrong flagged':>13}"
    ]
    for name, row in rows.items():
        flagged = [
            "-" if row[key] is None else f"{row[key]:.3f}"
            for key in ("right_flagged", "wrong_flagged")
        ]
        low, high = row["interval_95"]
        lines.append(
            f"{name:<34} {row['accuracy']:>8.4f}  {f'{low:.4f}-{high:.4f}':<13}  "
            f"{row['ece']:>6.4f}  {flagged[0]:>13}  {flagged[1]:>13}"
        )
    return "\n".join(lines)


def blank_pictures() -> list[bytes]:
    """Pictures without a digit: empty, blank pages, a photo of no ink, slivers."""
    rng = np.random.default_rng(5)
    arrays = [
        np.zeros((1, 1)),
        np.full((280, 280), 255),
        np.zeros((64, 64)),
        rng.normal(200, 3, (240, 320)),
        np.full((1, 2000), 128),
        np.full((900, 2), 30),
    ]
    return [encode_png(np.clip(a, 0, 255)) for a in arrays]


def not_digit_rows(signature, digits: np.ndarray, seed: int, count: int = 200) -> dict[str, dict]:
    """A row per picture that is not one digit (photos' NOT_DIGITS, from the first `count`
    digits, and BLANK): the shares flagged (confidence below the threshold) and with no ink found
    (confidence 0), and the highest confidence, which should stay below the threshold."""
    pictures = {
        name: render_pairs(digits[:count], variant, seed) for name, variant in NOT_DIGITS.items()
    }
    pictures[BLANK] = blank_pictures()
    rows = {}
    for name, condition in pictures.items():
        print(f"Not a digit: measuring {name}...", flush=True)
        confidence = answers(signature, condition)[CONFIDENCE_OUTPUT]
        rows[name] = {
            "n": len(confidence),
            "flagged": round(float(np.mean(confidence < CONFIDENCE_THRESHOLD)), 3),
            "no_ink": round(float(np.mean(confidence == 0)), 3),
            "max_confidence": round(float(confidence.max()), 4),
        }
    return rows


def not_digit_table(rows: dict[str, dict]) -> str:
    """The rows of `not_digit_rows` as fixed-width text."""
    lines = [f"{'not a digit':<34} {'n':>5}  {'flagged':>7}  {'no ink':>6}  {'highest':>7}"]
    for name, row in rows.items():
        lines.append(
            f"{name:<34} {row['n']:>5}  {row['flagged']:>7.3f}  {row['no_ink']:>6.3f}  "
            f"{row['max_confidence']:>7.4f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("saved_model_dir", type=Path, help="a SavedModel with `serving_image`")
    parser.add_argument("--count", type=int, default=1000, help="the first N dev digits")
    parser.add_argument("--seed", type=int, default=11, help="the renderings' seed")
    args = parser.parse_args()
    dev = load_dev_set()
    if dev is None:
        raise SystemExit(1)
    digits, labels = (array[: args.count] for array in dev)
    signature = tf.saved_model.load(str(args.saved_model_dir)).signatures[SERVING_IMAGE_SIGNATURE]
    pictures = condition_pictures(digits, labels, args.seed)
    rows = measure(signature, pictures, labels, {ALL_CONDITIONS: harder(pictures)})
    print(f"\nModel: {args.saved_model_dir.resolve()}")
    print(
        f"Dev digits: the first {len(labels)} (seed {args.seed}); flagged: confidence below "
        f"{CONFIDENCE_THRESHOLD}; ECE over 10 confidence bins.\n"
    )
    print(table(rows))
    print(f"\nPictures that are not one digit (from the same dev digits, seed {args.seed}):\n")
    print(not_digit_table(not_digit_rows(signature, digits, args.seed)))


if __name__ == "__main__":
    main()
