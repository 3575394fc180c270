"""The monitor on request logs written by the server's own RequestLog: held-out digits show no
drift; a stream where one class dominates, or photos of blank paper, drift and are named."""

import io

import numpy as np
import pytest
from PIL import Image

from components.data.codecs import encode_png
from components.data.sample import load_sample
from pipeline.monitor import (
    MonitorError,
    answers,
    corrected,
    drift,
    read_requests,
    side,
    statistics,
    write_page,
)
from serving.corrections import CORRECTIONS_FILE, Corrections
from serving.metrics import Metrics
from serving.request_log import RequestLog, RequestLogSettings
from trainer.features import (
    CLASS_ID_OUTPUT,
    CONFIDENCE_OUTPUT,
    IMAGES_INPUT,
    MNIST_CLASS_NAMES,
    SERVING_IMAGE_SIGNATURE,
)

TRAINED, HELD_OUT = 2000, 600  # the fixture model trained on the first 2,000 of the sample


@pytest.fixture(scope="module")
def sample():
    pixels, labels = load_sample(TRAINED + HELD_OUT, seed=2)
    return [encode_png(p) for p in pixels], labels


@pytest.fixture(scope="module")
def trained_statistics(sample, trained_model_dir, transform_output):
    images = sample[0][:TRAINED]
    return statistics(side(images, *answers(trained_model_dir / "1", images), transform_output))


def blank_paper(seed: int) -> bytes:
    """A phone photo of paper with nothing on it: grey, uneven, noisy, JPEG."""
    rng = np.random.default_rng(seed)
    light = np.linspace(150, 210, 640)[None, :] + rng.normal(0, 6, (480, 640))
    picture = io.BytesIO()
    Image.fromarray(np.clip(light, 0, 255).astype(np.uint8)).convert("RGB").save(picture, "JPEG")
    return picture.getvalue()


def monitored(tmp_path, images, trained_model_dir, transform_output, trained_statistics):
    """`images` sent one per request, logged by RequestLog, read back and compared."""
    request_log = RequestLog(tmp_path, "mnist_cnn", RequestLogSettings(), Metrics())
    class_ids, confidences = answers(trained_model_dir / "1", images)
    for image, class_id, confidence in zip(images, class_ids, confidences, strict=True):
        outputs = {CLASS_ID_OUTPUT: np.array([class_id]), CONFIDENCE_OUTPUT: np.array([confidence])}
        request_log.record(1, SERVING_IMAGE_SIGNATURE, {IMAGES_INPUT: [image]}, outputs)
    request_log.close()
    requests = read_requests(tmp_path, "mnist_cnn", 1)
    assert len(requests.images) == len(images) and not requests.skipped
    served = statistics(
        side(requests.images, requests.class_ids, requests.confidences, transform_output)
    )
    distances, _ = drift(served, trained_statistics)
    return {d.feature: d for d in distances if d.distance > d.threshold}


def test_held_out_digits_do_not_drift(
    tmp_path, sample, trained_model_dir, transform_output, trained_statistics
):
    held_out = sample[0][TRAINED:]
    assert (
        monitored(tmp_path, held_out, trained_model_dir, transform_output, trained_statistics) == {}
    )


def test_a_class_that_dominates_drifts_in_the_predicted_class(
    tmp_path, sample, trained_model_dir, transform_output, trained_statistics
):
    images, labels = sample
    held_out, held_labels = images[TRAINED:], labels[TRAINED:]
    threes = [image for image, label in zip(held_out, held_labels, strict=True) if label == 3]
    stream = held_out[:300] + threes * 5
    drifted = monitored(tmp_path, stream, trained_model_dir, transform_output, trained_statistics)
    assert "predicted_class" in drifted and drifted["predicted_class"].measure == "L_INFTY"


def test_photos_of_blank_paper_drift_in_format_size_and_ink(
    tmp_path, trained_model_dir, transform_output, trained_statistics
):
    photos = [blank_paper(seed) for seed in range(60)]
    drifted = monitored(tmp_path, photos, trained_model_dir, transform_output, trained_statistics)
    assert {"format", "width", "ink_share"} <= set(drifted), drifted


def test_a_truncated_log_file_is_skipped_and_named_and_other_versions_left_out(tmp_path):
    request_log = RequestLog(tmp_path, "mnist_cnn", RequestLogSettings(), Metrics())
    outputs = {CLASS_ID_OUTPUT: np.array([1]), CONFIDENCE_OUTPUT: np.array([0.9])}
    for version in (1, 2):
        request_log.record(version, SERVING_IMAGE_SIGNATURE, {IMAGES_INPUT: [b"png"]}, outputs)
    request_log.close()
    (whole,) = list(tmp_path.glob("requests-*"))
    cut = tmp_path / "requests-cut.tfrecord"
    cut.write_bytes(whole.read_bytes()[:-7])
    requests = read_requests(tmp_path, "mnist_cnn", 2)
    assert requests.images == [b"png"] and list(requests.skipped) == [str(cut)]


def test_a_missing_log_folder_is_a_clear_error(tmp_path):
    with pytest.raises(MonitorError, match="No request log at"):
        read_requests(tmp_path / "nothing", "mnist_cnn", 1)


def test_the_page_shows_each_feature_with_its_distance(tmp_path):
    rng = np.random.default_rng(0)

    def made_up(ink: float) -> dict[str, list]:
        return {
            "format": ["png"] * 200,
            "channels": ["1"] * 200,
            "predicted_class": [str(i % 10) for i in range(200)],
            "confidence": ["0.99 and over"] * 200,
            "encoded_bytes": rng.normal(250, 20, 200).tolist(),
            "width": [28] * 200,
            "height": [28] * 200,
            "ink_share": rng.normal(ink, 0.02, 200).tolist(),
            "brightness": rng.normal(0.13, 0.02, 200).tolist(),
        }

    served, reference = made_up(0.4), made_up(0.19)
    distances, _ = drift(statistics(served), statistics(reference))
    page = write_page(served, reference, distances, tmp_path)
    text = page.read_text()
    assert "ink_share" in text and "DRIFT" in text and (tmp_path / "drift.png").stat().st_size


def test_corrected_answers_are_counted_for_their_version_in_every_corrections_file(tmp_path):
    corrections = Corrections(tmp_path)
    request_id = corrections.remember(2, SERVING_IMAGE_SIGNATURE, [b"a", b"b", b"c"], ["1"] * 3)
    for index, class_name in enumerate(("1", "7", "7")):  # the model was right once
        corrections.correct(request_id, index, class_name, list(MNIST_CLASS_NAMES))
    (tmp_path / CORRECTIONS_FILE).rename(tmp_path / "corrections-span-3.jsonl")  # in a span
    other = corrections.remember(1, SERVING_IMAGE_SIGNATURE, [b"d"], ["4"])
    corrections.correct(other, 0, "4", list(MNIST_CLASS_NAMES))  # another version's
    assert corrected(tmp_path, 2) == (3, 1) and corrected(tmp_path, 1) == (1, 1)
