"""`make monitor`: are the pictures the served model answers still like those it was trained on?

Reads the request log (serving/request_log.py, TF Serving's PredictionLog records) of the
served version, and compares it with the test split of the data that model was trained on
(pictures of the training data's kind that no training decision saw, so that the model's
answers to them are a fair reference), with TFDV: the same features on both sides (the picture
as sent: encoded size, format, width, height, channels; the picture after the model's own
Transform graph: ink share and brightness of the 28x28 input; the answer: predicted class and
confidence band), then TFDV's drift comparators against the reference (L-infinity for
categories, Jensen-Shannon divergence for numbers). Drift past a threshold is named with its
distance; exit 3 then, as a failed data validation, else 0.

    make monitor        # python -m pipeline.monitor
"""

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_transform as tft
from matplotlib.figure import Figure
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2
from tensorflow_serving.apis import prediction_log_pb2

from components.data.atomic import replaced_atomically, write_atomically
from components.splits import TEST
from pipeline import local_runner
from pipeline.demo import read_split
from pipeline.results import run_summary
from pipeline.settings import Settings
from pipeline.stats import accuracy_text
from serving.core import images_of
from serving.corrections import read_corrections
from serving.limits import image_header
from serving.request_log import log_files
from trainer.features import (
    CLASS_ID_OUTPUT,
    CONFIDENCE_OUTPUT,
    CONFIDENCE_THRESHOLD,
    IMAGE_KEY,
    IMAGES_INPUT,
    SERVING_IMAGE_SIGNATURE,
    transformed_name,
)

CATEGORICAL = ("format", "channels", "predicted_class", "confidence")
NUMERIC = ("encoded_bytes", "width", "height", "ink_share", "brightness")
# Drift thresholds: a category's share may move by 0.1 (L-infinity); a number's distribution
# by a Jensen-Shannon divergence of 0.1. Two samples of the same digits stay under both (1,000
# dev digits against another 2,000: at most 0.023); a class that takes half the requests, or
# photos of blank paper, pass them (pipeline/monitor_test.py).
L_INFINITY, JENSEN_SHANNON = 0.1, 0.1
# Confidence in bands, the lowest the client's "not sure": as a number its distribution is so
# concentrated near 1 that two samples of the same digits differed by a divergence of 0.07.
CONFIDENCE_BANDS = [CONFIDENCE_THRESHOLD, 0.9, 0.99]
REFERENCE_SAMPLE = 2000
INK = 0.2  # a transformed pixel above this is ink (the transformed picture ranges 0..1)


class MonitorError(FileNotFoundError):
    """The monitor cannot run: no request log, no served model, no request it answered (exit 2,
    as for any missing input)."""


@dataclasses.dataclass
class Requests:
    """The served version's logged requests: pictures and answers, and the files skipped."""

    images: list[bytes]
    class_ids: list[int]
    confidences: list[float]
    skipped: dict[str, str]  # file -> why


def read_requests(log_dir: Path, model_name: str, version: int) -> Requests:
    """Every logged Predict that `version` of `model_name` answered. Files that are truncated
    or not request logs are skipped and named; records of other models or versions are left
    out."""
    if not log_dir.is_dir():
        raise MonitorError(
            f"No request log at {log_dir}: `make serve` writes it (--request_log_dir)"
        )
    requests = Requests([], [], [], {})
    for path in log_files(log_dir):
        found = Requests([], [], [], {})
        try:
            for record in tf.data.TFRecordDataset(str(path)):
                log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
                spec = log.log_metadata.model_spec
                if spec.name != model_name or spec.version.value != version:
                    continue
                (input_name, values), *_ = log.predict_log.request.inputs.items()
                outputs = log.predict_log.response.outputs
                found.images += images_of(input_name, list(values.string_val))
                found.class_ids += tf.make_ndarray(outputs[CLASS_ID_OUTPUT]).tolist()
                found.confidences += tf.make_ndarray(outputs[CONFIDENCE_OUTPUT]).tolist()
        except (tf.errors.OpError, ValueError, KeyError) as error:
            requests.skipped[str(path)] = f"{type(error).__name__}: {str(error)[:120]}"
            continue
        requests.images += found.images
        requests.class_ids += found.class_ids
        requests.confidences += found.confidences
    return requests


def picture_features(
    images: list[bytes], transform_output: tft.TFTransformOutput
) -> dict[str, list]:
    """What each picture looks like as sent, and after the model's Transform graph."""
    formats, widths, heights, channels = [], [], [], []
    for data in images:
        header = image_header(data)
        formats.append(header[0] if header else "unknown")
        widths.append(header[1][0] if header else 0)
        heights.append(header[1][1] if header else 0)
        try:
            decoded = tf.io.decode_image(data, expand_animations=False)
            channels.append(str(decoded.shape[-1]))
        except tf.errors.OpError:
            channels.append("undecodable")
    layer = transform_output.transform_features_layer()
    spec = transform_output.raw_feature_spec()[IMAGE_KEY]
    ink, brightness = [], []
    for start in range(0, len(images), 256):
        batch = tf.constant(images[start : start + 256])
        raw = tf.reshape(batch, [-1, *spec.shape]) if spec.shape else batch
        pixels = layer({IMAGE_KEY: raw})[transformed_name(IMAGE_KEY)].numpy()
        ink += (pixels > INK).mean(axis=(1, 2, 3)).tolist()
        brightness += pixels.mean(axis=(1, 2, 3)).tolist()
    return {
        "encoded_bytes": [len(data) for data in images],
        "format": formats,
        "width": widths,
        "height": heights,
        "channels": channels,
        "ink_share": ink,
        "brightness": brightness,
    }


def statistics(features: dict[str, list]) -> statistics_pb2.DatasetFeatureStatisticsList:
    return tfdv.generate_statistics_from_dataframe(pd.DataFrame(features))


@dataclasses.dataclass
class Drift:
    feature: str
    measure: str  # L_INFTY or JENSEN_SHANNON_DIVERGENCE
    distance: float
    threshold: float


def drift(
    served: statistics_pb2.DatasetFeatureStatisticsList,
    trained: statistics_pb2.DatasetFeatureStatisticsList,
) -> tuple[list[Drift], anomalies_pb2.Anomalies]:
    """Each feature's distance from the training side, and TFDV's anomalies (drift past a
    threshold, and values the training side never had)."""
    schema = tfdv.infer_schema(trained)
    for feature in schema.feature:
        comparator = feature.drift_comparator
        if feature.name in CATEGORICAL:
            comparator.infinity_norm.threshold = L_INFINITY
        else:
            comparator.jensen_shannon_divergence.threshold = JENSEN_SHANNON
    anomalies = tfdv.validate_statistics(served, schema, previous_statistics=trained)
    distances = [
        Drift(
            info.path.step[0],
            anomalies_pb2.DriftSkewInfo.Measurement.Type.Name(measurement.type),
            measurement.value,
            measurement.threshold,
        )
        for info in anomalies.drift_skew_info
        for measurement in info.drift_measurements
    ]
    return distances, anomalies


def answers(model_dir: Path, images: list[bytes]) -> tuple[list[int], list[float]]:
    """The served model's class ids and confidences for `images`."""
    signature = tf.saved_model.load(str(model_dir)).signatures[SERVING_IMAGE_SIGNATURE]
    class_ids, confidences = [], []
    for start in range(0, len(images), 256):
        outputs = signature(**{IMAGES_INPUT: tf.constant(images[start : start + 256])})
        class_ids += outputs[CLASS_ID_OUTPUT].numpy().tolist()
        confidences += outputs[CONFIDENCE_OUTPUT].numpy().tolist()
    return class_ids, confidences


def side(
    images: list[bytes],
    class_ids: list[int],
    confidences: list[float],
    transform_output: tft.TFTransformOutput,
) -> dict[str, list]:
    """The monitored features of one side: the pictures and the model's answers to them."""
    bands = [f"under {CONFIDENCE_BANDS[0]}", *(f"{bound} and over" for bound in CONFIDENCE_BANDS)]
    return {
        **picture_features(images, transform_output),
        "predicted_class": [str(class_id) for class_id in class_ids],
        "confidence": [bands[i] for i in np.digitize(confidences, CONFIDENCE_BANDS)],
    }


def write_page(
    served: dict[str, list], reference: dict[str, list], distances: list[Drift], out: Path
) -> Path:
    """`out/index.html`: each feature's distance and threshold, and both distributions side by
    side (shares of each category; histograms of each number)."""
    by_feature = {d.feature: d for d in distances}
    names = [*CATEGORICAL, *NUMERIC]
    figure = Figure(figsize=(13, 10))  # no pyplot: no display needed, no global state
    axes = figure.subplots(3, 3)
    for axis, name in zip(axes.flat, names, strict=True):
        if name in CATEGORICAL:
            values = sorted(set(served[name]) | set(reference[name]))
            for offset, (label, column) in enumerate(
                (("test split", reference[name]), ("requests", served[name]))
            ):
                shares = [column.count(v) / max(len(column), 1) for v in values]
                axis.bar(np.arange(len(values)) + 0.4 * offset, shares, width=0.4, label=label)
            axis.set_xticks(np.arange(len(values)) + 0.2, values, rotation=30, fontsize=7)
        else:
            low = min(min(served[name]), min(reference[name]))
            high = max(max(served[name]), max(reference[name]))
            bins = np.linspace(low, high if high > low else low + 1, 30)
            axis.hist(reference[name], bins, density=True, alpha=0.6, label="test split")
            axis.hist(served[name], bins, density=True, alpha=0.6, label="requests")
        item = by_feature.get(name)
        verdict = (
            ""
            if item is None
            else (f" {item.distance:.3f}" + (" DRIFT" if item.distance > item.threshold else ""))
        )
        axis.set_title(name + verdict, fontsize=9)
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    with replaced_atomically(out / "drift.png") as partial:
        figure.savefig(partial, dpi=80, format="png")
    rows = "".join(
        f"<tr><td>{d.feature}</td><td>{d.measure}</td><td>{d.distance:.3f}</td>"
        f"<td>{d.threshold:.2f}</td><td>{'DRIFT' if d.distance > d.threshold else 'ok'}</td></tr>"
        for d in sorted(distances, key=lambda d: d.distance / d.threshold, reverse=True)
    )
    page = out / "index.html"
    write_atomically(
        page,
        "<!doctype html><html><head><meta charset='utf-8'><title>Drift</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}td{padding:0 1em}"
        "img{max-width:100%}</style></head><body><h1>Served requests against the test split"
        "</h1><table><tr><th>feature</th><th>measure</th><th>distance</th><th>threshold</th>"
        f"<th></th></tr>{rows}</table><img src='drift.png' alt='distributions'></body></html>",
    )
    return page


def served_version(serving_model_dir: Path) -> Path:
    versions = [p for p in serving_model_dir.glob("*") if (p / "saved_model.pb").exists()]
    if not versions:
        raise MonitorError(f"No model is served from {serving_model_dir}: `make run` pushes one")
    return max(versions, key=lambda path: int(path.name))


def report(distances: list[Drift], requests: Requests, version: Path, reference: int) -> list[str]:
    lines = [
        f"Monitored {len(requests.images)} logged pictures answered by version {version.name}"
        f" against {reference} pictures of its test split",
    ]
    lines += [f"  skipped {file}: {why}" for file, why in requests.skipped.items()]
    for item in sorted(distances, key=lambda d: d.distance / d.threshold, reverse=True):
        verdict = "DRIFT" if item.distance > item.threshold else "ok"
        lines.append(
            f"  {item.feature:<16} {item.measure:<26} {item.distance:.3f} "
            f"(threshold {item.threshold:.2f})  {verdict}"
        )
    return lines


def corrected(log_dir: Path, version: int) -> tuple[int, int]:
    """(answers of `version` that people corrected, how many of them the model had right),
    from every corrections file, including those already turned into spans."""
    found = [
        correction
        for path in sorted(log_dir.glob("corrections*.jsonl"))
        for correction in read_corrections(path)[0]
        if correction.model_version == version
    ]
    return len(found), sum(c.served_class_name == c.class_name for c in found)


def main() -> int:
    settings = Settings.from_env()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # TFMA's deprecation notices
    version = served_version(settings.serving_model_dir)
    requests = read_requests(settings.request_log_dir, settings.model_name, int(version.name))
    if not requests.images:
        raise MonitorError(
            f"No request answered by version {version.name} in {settings.request_log_dir}"
        )
    summary = run_summary(settings.metadata_path)
    transform_output = tft.TFTransformOutput(str(summary.artifact_uris["Transform.TransformGraph"]))
    images, _ = read_split(summary.examples_uris, TEST, limit=REFERENCE_SAMPLE)
    reference = side(images, *answers(version, images), transform_output)
    served = side(requests.images, requests.class_ids, requests.confidences, transform_output)
    distances, anomalies = drift(statistics(served), statistics(reference))
    out = settings.drift_file.parent
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "anomalies.pbtxt", str(anomalies))
    answers_corrected, right = corrected(settings.request_log_dir, int(version.name))
    document = {
        "model_name": settings.model_name,
        "version": version.name,
        "requests": len(requests.images),
        "reference": len(images),
        "features": [dataclasses.asdict(d) for d in distances],
        "corrected": {"answers": answers_corrected, "right": right},
    }
    write_atomically(settings.drift_file, json.dumps(document, indent=2))
    page = write_page(served, reference, distances, out)
    print("\n".join(report(distances, requests, version, len(images))))
    if answers_corrected:  # people mostly correct wrong answers: no estimate of all requests
        print(
            f"  corrected by people: {answers_corrected} answers; the model was right on "
            f"{accuracy_text(right / answers_corrected, answers_corrected)} of them"
        )
    drifted = [d.feature for d in distances if d.distance > d.threshold]
    print(f"Drift in {', '.join(drifted)}" if drifted else "No drift", f"(charts: {page})")
    return 3 if drifted else 0


if __name__ == "__main__":
    local_runner.run_cli(main, exclusive=False)
