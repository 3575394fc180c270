from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.data import colour_shapes
from components.data.codecs import encode_png
from components.splits import TEST, TRAIN
from pipeline.data_source import DataSource, class_folder_splits
from pipeline.image_profile import check_backbone, decide, for_compiled_pipeline
from pipeline.settings import Settings, SettingsError
from trainer.features import DIGITS, PHOTOS, ImageProfile


def folder_source(root: Path) -> DataSource:
    return DataSource(str(root), "images", class_folder_splits(root, ""))


def write_digits(root: Path, digits) -> None:
    """Class folders of real MNIST digits, as PNG files of 28x28, dark ink on white paper for
    one class (as scans arrive) and MNIST's own form for the other."""
    pixels, labels = digits
    for name, digit in (("zero", 0), ("one", 1)):
        (root / name).mkdir(parents=True)
        for index in np.flatnonzero(labels == digit)[:6]:
            ink = pixels[index] if digit == 0 else 255 - pixels[index]
            (root / name / f"{index}.png").write_bytes(encode_png(ink))


def write_grey_photos(root: Path, sides: list[int]) -> None:
    """Two classes of grey scenes (textured, light everywhere): not ink on plain paper."""
    rng = np.random.default_rng(0)
    for name in ("bright", "dark"):
        (root / name).mkdir(parents=True)
        for index, side in enumerate(sides):
            scene = rng.integers(0, 255, (side, side // 2 + 40)).astype(np.uint8)
            Image.fromarray(scene).save(root / name / f"{index}.png")


def test_colour_pictures_make_photos_of_their_median_size_bounded_by_the_setting(tmp_path):
    colour_shapes.write(tmp_path / "shapes", count=36, size=80)
    decision = decide(folder_source(tmp_path / "shapes"), Settings(photo_max_side=64))
    assert decision.profile == ImageProfile(PHOTOS, 64, 64, 3)
    assert "36 of 36 sampled pictures in colour" in decision.reason
    assert decision.mismatches == ()
    smaller = decide(folder_source(tmp_path / "shapes"), Settings(photo_max_side=128))
    assert smaller.profile.shape == (80, 80, 3)  # the pictures' own size, under the bound


def test_grey_ink_on_paper_makes_digits(tmp_path, digits):
    write_digits(tmp_path / "digits", digits)
    decision = decide(folder_source(tmp_path / "digits"), Settings())
    assert decision.profile == ImageProfile()
    assert decision.profile.name == DIGITS and "grey ink on plain paper" in decision.reason


def test_grey_photos_of_mixed_sizes_make_one_channel_photos_of_the_median_side(tmp_path):
    write_grey_photos(tmp_path / "grey", sides=[40, 50, 60, 70, 100])
    decision = decide(folder_source(tmp_path / "grey"), Settings(photo_max_side=128))
    # Longer sides 60, 65, 70, 75, 100 (width = side / 2 + 40): the median, 70, rounds to 72.
    assert decision.profile == ImageProfile(PHOTOS, 72, 72, 1)
    assert "not ink on paper" in decision.reason


def test_a_forced_profile_names_the_class_folders_that_look_like_the_other(tmp_path, digits):
    colour_shapes.write(tmp_path / "shapes", count=12, size=64)
    forced = decide(folder_source(tmp_path / "shapes"), Settings(image_profile=DIGITS))
    assert forced.profile == ImageProfile()
    assert set(forced.mismatches) == {f"{n} (colour photos)" for n in colour_shapes.CLASS_NAMES}
    write_digits(tmp_path / "digits", digits)
    forced = decide(folder_source(tmp_path / "digits"), Settings(image_profile=PHOTOS))
    assert forced.profile.name == PHOTOS and forced.profile.channels == 1
    assert forced.mismatches == (
        "one (grey ink on plain paper, like digits)",
        "zero (grey ink on plain paper, like digits)",
    )


def test_the_sample_holds_digits_and_a_compiled_pipeline_follows_the_setting(tmp_path):
    sample = DataSource(str(tmp_path), "tfrecords", {"all": "*"})
    assert decide(sample, Settings()).profile == ImageProfile()
    assert for_compiled_pipeline(Settings()).profile == ImageProfile()
    compiled = for_compiled_pipeline(Settings(image_profile=PHOTOS, photo_max_side=96))
    assert compiled.profile == ImageProfile(PHOTOS, 96, 96, 3)


def test_an_unknown_profile_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="IMAGE_PROFILE=colour: expected auto, digits or photos"):
        Settings(image_profile="colour")


def test_a_backbone_is_refused_at_once_without_photos_or_without_its_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = Settings.from_env({"BACKBONE": "mobilenet_v3_small"})
    digits = decide(DataSource(str(tmp_path), "tfrecords", {"all": "*"}), settings)
    with pytest.raises(SettingsError, match="this run's profile is digits: set IMAGE_PROFILE"):
        check_backbone(settings, digits)
    colour_shapes.write(tmp_path / "shapes", count=12, size=48)
    photos = decide(folder_source(tmp_path / "shapes"), settings)
    path = tmp_path / ".keras" / "models" / "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    with pytest.raises(SettingsError, match=f"{path} does not exist: put https://"):
        check_backbone(settings, photos)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights")
    check_backbone(settings, photos)
    with pytest.raises(SettingsError, match="BACKBONE=resnet: expected mobilenet_v3_small or"):
        Settings.from_env({"BACKBONE": "resnet"})


def test_unreadable_pictures_are_left_to_example_gen_and_test_data_is_not_looked_at(tmp_path):
    colour_shapes.write(tmp_path / "shapes", count=24, size=48)
    (tmp_path / "shapes" / "red_circle" / "empty.png").write_bytes(b"")
    (tmp_path / "shapes" / "red_circle" / "text.jpg").write_text("not a picture")
    source = folder_source(tmp_path / "shapes")
    with_test_data = DataSource(
        source.data_root, "images", {TRAIN: "*/*", TEST: str(tmp_path / "idx" / "*")}
    )
    for data in (source, with_test_data):
        decision = decide(data, Settings())
        assert decision.profile == ImageProfile(PHOTOS, 48, 48, 3)
        assert "24 of 24 sampled pictures in colour" in decision.reason
