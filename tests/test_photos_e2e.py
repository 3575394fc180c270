"""The whole pipeline on a small folder of colour photos, through `make run`'s entry point: the
photos profile is decided from the data, and the pushed model serves colour pictures."""

import numpy as np
import pytest
import tensorflow as tf

from components.data import colour_shapes
from components.data.sample import make_example
from pipeline.results import run_summary
from tests.pipeline_runs import run_pipeline, settings_for
from trainer.export import read_class_names, read_image_profile
from trainer.features import (
    CLASS_ID_OUTPUT,
    CLASS_NAME_OUTPUT,
    EXAMPLES_INPUT,
    IMAGES_INPUT,
    PHOTOS,
    PROBABILITIES_OUTPUT,
    SERVING_DEFAULT_SIGNATURE,
    SERVING_IMAGE_SIGNATURE,
    ImageProfile,
)

# 30 pictures of 48-128 pixels per class, a small input and one network: a quick run, which
# need not be accurate (the floor is 0), only photos from end to end.
PHOTOS_RUN = {
    "EPOCHS": "2",
    "ENSEMBLE_MEMBERS": "1",
    "PHOTO_MAX_SIDE": "32",
    "EVAL_ACCURACY_THRESHOLD": "0",
}


@pytest.fixture(scope="module")
def photos_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    colour_shapes.write(root / "shapes", count=180, seed=1)
    completed = run_pipeline(root / "outputs", DATA=str(root / "shapes"), **PHOTOS_RUN)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-4000:]
    return root, completed, run_summary(settings_for(root / "outputs").metadata_path)


def test_the_run_decides_photos_from_the_data_and_says_why(photos_run):
    _, completed, _ = photos_run
    assert "Image profile: photos, input 32x32x3 (auto: " in completed.stdout
    assert "sampled pictures in colour" in completed.stdout
    assert "Warning: with the" not in completed.stdout  # no class folder looks like digits


def test_the_pushed_model_passed_the_serving_check_and_carries_the_profile(photos_run):
    _, completed, summary = photos_run
    assert summary.blessed and summary.serving_check.problems == []
    assert "Serving check: passed" in completed.stdout
    assert read_image_profile(summary.pushed_path) == ImageProfile(PHOTOS, 32, 32, 3)
    assert read_class_names(summary.pushed_path) == sorted(colour_shapes.CLASS_NAMES)


def test_the_pushed_model_answers_colour_pictures_alike_on_both_signatures(photos_run):
    root, _, summary = photos_run
    files = sorted((root / "shapes").glob("*/*.jpg"))[::30]  # one picture of each class
    pictures = [path.read_bytes() for path in files]
    model = tf.saved_model.load(str(summary.pushed_path))
    from_images = model.signatures[SERVING_IMAGE_SIGNATURE](**{IMAGES_INPUT: tf.constant(pictures)})
    examples = [make_example(picture, 0, "").SerializeToString() for picture in pictures]
    from_examples = model.signatures[SERVING_DEFAULT_SIGNATURE](
        **{EXAMPLES_INPUT: tf.constant(examples)}
    )
    assert from_images[PROBABILITIES_OUTPUT].shape == (len(files), 6)
    np.testing.assert_allclose(
        from_images[PROBABILITIES_OUTPUT], from_examples[PROBABILITIES_OUTPUT], rtol=1e-5
    )
    names = sorted(colour_shapes.CLASS_NAMES)  # label ids: the sorted class folder names
    answered = [name.decode() for name in from_images[CLASS_NAME_OUTPUT].numpy()]
    assert answered == [names[i] for i in from_images[CLASS_ID_OUTPUT].numpy()]
