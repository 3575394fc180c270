"""Corrections: tied to a remembered answer, refused in one sentence otherwise, read back whole."""

import pytest

from components.data.codecs import encode_png
from components.data.sample import load_sample
from serving.corrections import CORRECTIONS_FILE, CorrectionError, Corrections, read_corrections
from trainer.features import MNIST_CLASS_NAMES

CLASSES = list(MNIST_CLASS_NAMES)


@pytest.fixture(scope="module")
def pngs():
    pixels, _ = load_sample(3, seed=4)
    return [encode_png(p) for p in pixels]


def test_a_correction_keeps_the_picture_both_classes_and_the_version(tmp_path, pngs):
    corrections = Corrections(tmp_path)
    by_image = corrections.remember(4, "serving_image", pngs, ["1", "2", "3"])
    by_example = corrections.remember(5, "serving_default", pngs, ["9"] * 3)
    assert by_image != by_example
    corrections.correct(by_image, 2, "7", CLASSES)
    corrections.correct(by_example, 0, "4", CLASSES)
    written, bad = read_corrections(tmp_path / CORRECTIONS_FILE)
    assert bad == 0
    kept = [(c.request_id, c.index, c.served_class_name, c.class_name, c.label) for c in written]
    assert kept == [(by_image, 2, "3", "7", 7), (by_example, 0, "9", "4", 4)]
    assert [c.image for c in written] == [pngs[2], pngs[0]]
    assert [c.model_version for c in written] == [4, 5]


def test_unknown_requests_indexes_and_classes_are_refused_naming_them(tmp_path, pngs):
    corrections = Corrections(tmp_path)
    request_id = corrections.remember(1, "serving_image", pngs[:1], ["1"])
    for args, message in (
        (("feedc0ffee", 0, "7"), "Unknown request id 'feedc0ffee'"),
        ((request_id, 1, "7"), f"Request {request_id} holds 1 pictures: no index 1"),
        ((request_id, 0, "seven"), "Class 'seven' is not one of the model's: 0, 1, 2"),
    ):
        with pytest.raises(CorrectionError, match=message):
            corrections.correct(*args, CLASSES)
    assert not (tmp_path / CORRECTIONS_FILE).exists()


def test_the_oldest_answers_make_room_by_count_and_by_bytes(tmp_path, pngs):
    corrections = Corrections(tmp_path, max_answers=2, max_bytes=10 * len(pngs[0]))
    one = [pngs[0]]
    ids = [corrections.remember(1, "serving_image", one, ["1"]) for _ in range(3)]
    with pytest.raises(CorrectionError, match="Unknown request id"):
        corrections.correct(ids[0], 0, "1", CLASSES)
    corrections.correct(ids[2], 0, "1", CLASSES)
    big = corrections.remember(1, "serving_image", [pngs[0]] * 10, ["1"] * 10)
    with pytest.raises(CorrectionError, match="Unknown request id"):
        corrections.correct(ids[1], 0, "1", CLASSES)  # pushed out by the bytes of `big`
    corrections.correct(big, 9, "1", CLASSES)


def test_a_line_cut_by_a_kill_is_skipped_and_counted(tmp_path, pngs):
    corrections = Corrections(tmp_path)
    request_id = corrections.remember(1, "serving_image", pngs[:1], ["1"])
    corrections.correct(request_id, 0, "7", CLASSES)
    with open(tmp_path / CORRECTIONS_FILE, "a") as file:
        file.write('{"request_id": "cut in the mid')
    written, bad = read_corrections(tmp_path / CORRECTIONS_FILE)
    assert (len(written), bad) == (1, 1)
