"""The run report: `outputs/report/index.html`, a static page with PNG charts, written after
every `make run` from what the run produced."""

import dataclasses
import html
import io
import json
from pathlib import Path

import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from PIL import Image

from components.data.atomic import replaced_atomically, write_atomically
from components.data.photos import KINDS, render
from components.splits import TEST, TRAIN, VALIDATION
from pipeline.demo import split_batches, split_labels
from pipeline.results import RunSummary
from pipeline.stats import accuracy_text, wilson_interval
from trainer.calibration import reliability, scaled
from trainer.config import CALIBRATION_FILE, HISTORY_FILE
from trainer.export import read_class_names, read_image_profile
from trainer.features import (
    CLASS_ID_OUTPUT,
    CONFIDENCE_OUTPUT,
    CONFIDENCE_THRESHOLD,
    DIGITS,
    IMAGE_KEY,
    IMAGE_SHAPE,
    IMAGES_INPUT,
    LABEL_KEY,
    PROBABILITIES_OUTPUT,
    SERVING_IMAGE_SIGNATURE,
    ImageProfile,
)

MAX_MISCLASSIFIED = 24


@dataclasses.dataclass
class SplitAnswers:
    """The model's answers on the whole test split, read in batches; of the pictures, only those
    the report shows are kept (memory stays bounded however large the split)."""

    labels: np.ndarray
    probabilities: np.ndarray
    misclassified: list[tuple[int, bytes]]  # (index, picture), the first MAX_MISCLASSIFIED
    first_per_class: dict[int, bytes]  # label -> its first picture
    first_two: list[bytes]

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)


def answer_test_split(signature, examples_uris: list[Path]) -> SplitAnswers:
    labels, probabilities, misclassified, first_per_class, first_two = [], [], [], {}, []
    seen = 0
    for batch in split_batches(examples_uris, TEST):
        images, batch_labels = batch[IMAGE_KEY], batch[LABEL_KEY]
        batch_probabilities = signature(**{IMAGES_INPUT: tf.constant(images)})[
            PROBABILITIES_OUTPUT
        ].numpy()
        for index in np.flatnonzero(batch_probabilities.argmax(axis=1) != batch_labels):
            if len(misclassified) < MAX_MISCLASSIFIED:
                misclassified.append((seen + int(index), images[index]))
        for image, label in zip(images, batch_labels, strict=True):
            first_per_class.setdefault(int(label), image)
        first_two.extend(images[: 2 - len(first_two)])
        labels.append(batch_labels)
        probabilities.append(batch_probabilities)
        seen += len(images)
    return SplitAnswers(
        np.concatenate(labels),
        np.concatenate(probabilities),
        misclassified,
        first_per_class,
        first_two,
    )


def _subplots(rows: int = 1, columns: int = 1, *, figsize: tuple, **options) -> tuple:
    """A figure and its axes, drawn without pyplot: no GUI backend to choose, no global state."""
    figure = Figure(figsize=figsize)
    return figure, figure.subplots(rows, columns, **options)


def _save(figure: Figure, path: Path) -> str:
    figure.tight_layout()
    with replaced_atomically(path) as partial:
        figure.savefig(partial, dpi=90, format=path.suffix[1:])
    return path.name


def _curves(history: dict, path: Path) -> str:
    figure, (loss, accuracy) = _subplots(1, 2, figsize=(10, 3.5))
    epochs = range(1, len(history["loss"]) + 1)
    for axes, metric in ((loss, "loss"), (accuracy, "accuracy")):
        axes.plot(epochs, history[metric], label="training")
        axes.plot(epochs, history[f"val_{metric}"], label="validation split")
        axes.set_xlabel("epoch")
        axes.set_title(metric)
        axes.legend()
    return _save(figure, path)


def _confusion(matrix: np.ndarray, class_names: list[str], path: Path) -> str:
    figure, axes = _subplots(figsize=(6, 5.5))
    axes.imshow(matrix, cmap="Blues")
    for (true, predicted), count in np.ndenumerate(matrix):
        if count:
            color = "white" if count > matrix.max() / 2 else "black"
            axes.text(predicted, true, str(count), ha="center", va="center", color=color)
    axes.set(
        xticks=range(len(class_names)),
        yticks=range(len(class_names)),
        xlabel="predicted",
        ylabel="true",
        title="Confusion matrix (test split)",
    )
    axes.set_xticklabels(class_names)
    axes.set_yticklabels(class_names)
    return _save(figure, path)


def _reliability(
    calibrated: list[dict], raw: list[dict], ece: float, raw_ece: float, path: Path
) -> str:
    """Accuracy against confidence per bin, of the exported (calibrated) probabilities and of
    the network's own: a calibrated model's bars sit on the diagonal."""
    figure, axes = _subplots(figsize=(5, 4.5))
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    for row in calibrated:
        axes.bar(
            (row["low"] + row["high"]) / 2,
            row["accuracy"],
            width=row["high"] - row["low"],
            edgecolor="black",
            color="tab:blue",
            alpha=0.7,
        )
        axes.annotate(
            str(row["count"]),
            ((row["low"] + row["high"]) / 2, row["accuracy"] + 0.01),
            ha="center",
            fontsize=7,
        )
    axes.plot(
        [row["confidence"] for row in raw],
        [row["accuracy"] for row in raw],
        marker="o",
        color="tab:orange",
        label=f"before calibration (ECE {raw_ece:.4f})",
    )
    axes.set(
        xlim=(0, 1),
        ylim=(0, 1.05),
        xlabel="confidence (top-class probability)",
        ylabel="accuracy",
        title=f"Reliability on the test split (ECE {ece:.4f})",
    )
    axes.legend(loc="upper left")
    return _save(figure, path)


def _bars(values: dict, title: str, ylabel: str, path: Path, ylim=None) -> str:
    figure, axes = _subplots(figsize=(7, 3.2))
    names = [str(name) for name in values]
    axes.bar(names, list(values.values()))
    axes.set(title=title, ylabel=ylabel)
    if ylim:
        axes.set_ylim(*ylim)
    return _save(figure, path)


def _label_distribution(
    labels_by_split: dict[str, np.ndarray], class_names: list[str], path: Path
) -> str:
    figure, axes = _subplots(figsize=(7, 3.2))
    width = 0.8 / len(labels_by_split)
    for offset, (split, labels) in enumerate(labels_by_split.items()):
        counts = np.bincount(labels, minlength=len(class_names))
        axes.bar(np.arange(len(class_names)) + offset * width, counts, width, label=split)
    axes.set(
        xticks=np.arange(len(class_names)) + width / 2, title="Labels per split", ylabel="count"
    )
    axes.set_xticklabels(class_names)
    axes.legend()
    return _save(figure, path)


def _gallery(images: list[bytes], captions: list[str], title: str, path: Path) -> str:
    columns = 8
    rows = max(1, -(-len(images) // columns))
    figure, grid = _subplots(
        rows, columns, figsize=(columns * 1.3, rows * 1.8 + 0.4), squeeze=False
    )
    for axes in grid.flat:
        axes.axis("off")
    for axes, image, caption in zip(grid.flat, images, captions, strict=False):
        axes.imshow(np.array(Image.open(io.BytesIO(image)).convert("RGB")))
        axes.set_title(caption, fontsize=8)
    figure.suptitle(title)
    return _save(figure, path)


def _as_people_send_them(
    signature, images: list[bytes], labels: np.ndarray, class_names: list[str], path: Path
) -> str:
    """Two test digits rendered as each kind of picture people send, with the model's answers;
    pictures of other sizes are first scaled to MNIST's 28x28 (the renderings start there)."""
    digits = [
        np.asarray(Image.open(io.BytesIO(image)).convert("L").resize(IMAGE_SHAPE[:2]))
        for image in images[:2]
    ]
    pictures, captions = [], []
    for name, variant in KINDS.items():
        rendered = render(np.stack(digits), variant, seed=0)
        outputs = signature(**{IMAGES_INPUT: tf.constant(rendered)})
        for picture, label, class_id, confidence in zip(
            rendered,
            labels[:2],
            outputs[CLASS_ID_OUTPUT].numpy(),
            outputs[CONFIDENCE_OUTPUT].numpy(),
            strict=True,
        ):
            answer = class_names[class_id] if confidence >= CONFIDENCE_THRESHOLD else "not sure"
            pictures.append(picture)
            captions.append(
                f"{name.split(' (')[0]}\ntrue {class_names[label]} / {answer} ({confidence:.2f})"
            )
    return _gallery(
        pictures, captions, "Digits as people send them: true / answer (confidence)", path
    )


@dataclasses.dataclass
class Measured:
    """What the report shows, measured once: the model's answers on the test split, and the
    numbers that go to report.json."""

    signature: object  # the model's serving_image signature
    profile: ImageProfile  # digits are also shown as people send them
    answers: SplitAnswers
    labels_by_split: dict[str, np.ndarray]
    class_names: list[str]
    matrix: np.ndarray  # confusion: true x predicted
    history: dict  # Keras' per-epoch metrics
    bins: list[dict]  # reliability of the exported (calibrated) probabilities
    raw_bins: list[dict]  # and of the network's own
    facts: dict


def measure(summary: RunSummary) -> Measured:
    """Loads the run's model and answers its test split."""
    uris = summary.artifact_uris
    model_dir = uris["Trainer.Model"] / "Format-Serving"
    model = tf.saved_model.load(str(model_dir))
    signature = model.signatures[SERVING_IMAGE_SIGNATURE]
    answers = answer_test_split(signature, summary.examples_uris)
    labels, probabilities = answers.labels, answers.probabilities
    labels_by_split = {
        split: split_labels(summary.examples_uris, split) for split in (TRAIN, VALIDATION)
    }
    labels_by_split[TEST] = labels
    class_names = read_class_names(model_dir)
    matrix = np.zeros((len(class_names), len(class_names)), dtype=int)
    np.add.at(matrix, (labels, answers.predicted), 1)
    history = json.loads((uris["Trainer.ModelRun"] / HISTORY_FILE).read_text())
    # The signatures apply the calibration's temperature; the inverse gives the network's own.
    calibration = json.loads((uris["Trainer.ModelRun"] / CALIBRATION_FILE).read_text())
    temperature = calibration["temperature"]
    bins, ece = reliability(probabilities, labels)
    raw_bins, raw_ece = reliability(scaled(probabilities, 1 / temperature), labels)
    facts = {
        "run_id": summary.run_id,
        "test_accuracy": summary.accuracy,
        "test_accuracy_interval_95": wilson_interval(
            round(summary.accuracy * summary.test_examples), summary.test_examples
        ),
        "expected_calibration_error": ece,
        "expected_calibration_error_before": raw_ece,
        "temperature": temperature,
        "unfamiliar_below": calibration.get("unfamiliar_below", 0.0),
        "reliability_bins": bins,
        "accuracy_change_vs_baseline": summary.accuracy_change,
        "test_examples": summary.test_examples,
        "blessed": summary.blessed,
        "validation_failures": summary.validation_failures,
        "pushed_path": str(summary.pushed_path) if summary.pushed_path else None,
        "class_names": class_names,
        "per_class_accuracy": summary.per_class_accuracy,
        "confusion_matrix": matrix.tolist(),
        "parameters": int(sum(np.prod(v.shape) for v in model.trainable_variables)),
        "model_size_bytes": sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file()),
        "epochs_trained": len(history["loss"]),
    }
    return Measured(
        signature,
        read_image_profile(model_dir),
        answers,
        labels_by_split,
        class_names,
        matrix,
        history,
        bins,
        raw_bins,
        facts,
    )


def draw_charts(measured: Measured, summary: RunSummary, report_dir: Path) -> dict[str, str]:
    """{title: PNG file name} of every chart, drawn into `report_dir`."""
    answers, class_names, facts = measured.answers, measured.class_names, measured.facts
    labels, predicted, probabilities = answers.labels, answers.predicted, answers.probabilities
    samples = sorted(answers.first_per_class)
    charts = {
        "Training and validation curves": _curves(measured.history, report_dir / "curves.png"),
        "Confusion matrix": _confusion(measured.matrix, class_names, report_dir / "confusion.png"),
        "Per-class accuracy (Evaluator)": _bars(
            summary.per_class_accuracy,
            "Accuracy per class",
            "accuracy",
            report_dir / "per_class.png",
            ylim=(min(summary.per_class_accuracy.values()) - 0.05, 1),
        ),
        "Reliability diagram": _reliability(
            measured.bins,
            measured.raw_bins,
            facts["expected_calibration_error"],
            facts["expected_calibration_error_before"],
            report_dir / "reliability.png",
        ),
        "Misclassified test digits": _gallery(
            [image for _, image in answers.misclassified],
            [
                f"true {labels[i]} / {predicted[i]} ({probabilities[i].max():.2f})"
                for i, _ in answers.misclassified
            ],
            f"{len(np.flatnonzero(predicted != labels))} misclassified (first "
            f"{len(answers.misclassified)}): true / predicted (probability)",
            report_dir / "misclassified.png",
        ),
        "Label distribution": _label_distribution(
            measured.labels_by_split, class_names, report_dir / "labels.png"
        ),
        "Sample per class": _gallery(
            [answers.first_per_class[label] for label in samples],
            [class_names[label] for label in samples],
            "One test picture per class",
            report_dir / "samples.png",
        ),
    }
    if measured.profile.name == DIGITS:
        charts["Digits as people send them"] = _as_people_send_them(
            measured.signature, answers.first_two, labels, class_names, report_dir / "people.png"
        )
    return charts


def page_html(summary: RunSummary, facts: dict, charts: dict[str, str]) -> str:
    """The report's page: the run's numbers in a table, then the charts."""
    change = summary.accuracy_change
    rows = {
        "Run": summary.run_id,
        "Test accuracy": accuracy_text(summary.accuracy, summary.test_examples),
        "Expected calibration error": f"{facts['expected_calibration_error']:.4f} "
        f"({facts['expected_calibration_error_before']:.4f} before the temperature "
        f"{facts['temperature']:.2f} fitted on the validation split; test split, 10 bins)",
        **(
            {
                "Held unsure": "confidence under the threshold where the network's own top "
                f"probability is under {facts['unfamiliar_below']:.2f} (validation split)"
            }
            if facts["unfamiliar_below"] > 0
            else {}
        ),
        "Against the last blessed model": "no baseline yet" if change is None else f"{change:+.4f}",
        "Blessing": "BLESSED"
        if summary.blessed
        else "NOT BLESSED: " + "; ".join(summary.validation_failures),
        "Pushed": str(summary.pushed_path or "nothing this run"),
        "Parameters": f"{facts['parameters']:,}",
        "Model size": f"{facts['model_size_bytes'] / 1e6:.2f} MB (SavedModel)",
        "Epochs trained": str(facts["epochs_trained"]),
    }
    table = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows.items()
    )
    figures = "".join(
        f'<h2>{html.escape(title)}</h2><img src="{name}" alt="{html.escape(title)}">'
        for title, name in charts.items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Pipeline run report</title>"
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}"
        "th{text-align:left;padding-right:1em}img{max-width:100%}</style></head><body>"
        f"<h1>Pipeline run report</h1><table>{table}</table>{figures}</body></html>"
    )


def write_report(summary: RunSummary, report_dir: Path) -> tuple[Path, dict]:
    """Charts and index.html for the run; numbers also go to report.json. Returns the page and
    the numbers."""
    report_dir.mkdir(parents=True, exist_ok=True)
    measured = measure(summary)
    charts = draw_charts(measured, summary, report_dir)
    write_atomically(report_dir / "report.json", json.dumps(measured.facts, indent=2))
    page = report_dir / "index.html"
    write_atomically(page, page_html(summary, measured.facts, charts))
    return page, measured.facts
