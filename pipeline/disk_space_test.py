"""The space a run needs, estimated from the data or the last run, checked against the disk."""

import os

import pytest

from pipeline.data_source import DataSource
from pipeline.disk_space import MODEL_BYTES, NotEnoughSpaceError, check_free_space, needed_bytes
from pipeline.settings import Settings
from tests.fixtures import small_filesystem

MB = 2**20


def sized(path, size: int) -> None:
    """A sparse file of `size` bytes: its size counts, the disk holds nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        file.truncate(size)


@pytest.fixture
def source(tmp_path) -> DataSource:
    sized(tmp_path / "data" / "cat" / "1.png", 2 * MB)
    return DataSource(str(tmp_path / "data"), "images", {"all": "*/*"})


def test_before_the_first_run_the_need_comes_from_the_data(tmp_path, source):
    needed, basis = needed_bytes(Settings(output_dir=tmp_path / "out"), source)
    assert needed == int(1.5 * (4 * 2 * MB + 3 * MODEL_BYTES))
    assert basis == f"38 MB from the data in {tmp_path / 'data'}"


def test_after_a_run_the_need_is_the_newest_output_of_each_component(tmp_path, source):
    settings = Settings(output_dir=tmp_path / "out")
    for execution, size in ((9, 300 * MB), (12, 60 * MB)):  # 12 is newer than 9
        sized(settings.pipeline_root / "Trainer" / "model" / str(execution) / "m.pb", size)
    sized(settings.pipeline_root / "Transform" / "transformed_examples" / "11" / "t.gz", 20 * MB)
    sized(settings.serving_model_dir / "1700000000" / "saved_model.pb", 5 * MB)
    assert needed_bytes(settings, source) == (int(1.5 * 85 * MB), "the last run wrote 85 MB")


def test_a_disk_without_room_is_refused_naming_the_folder_and_both_sizes(tmp_path, source):
    check_free_space(Settings(output_dir=tmp_path / "out"), source)  # the machine's disk
    with small_filesystem(tmp_path / "small", 8 * MB) as disk:
        settings = Settings(output_dir=disk / "outputs")
        with pytest.raises(NotEnoughSpaceError) as refused:
            check_free_space(settings, source)
        assert str(refused.value).startswith(
            f"not enough free space for a run in {disk}: about 57 MB needed (38 MB from the data"
        )
        assert "8.0 MB free" in str(refused.value)
        assert not os.listdir(disk)  # nothing written
