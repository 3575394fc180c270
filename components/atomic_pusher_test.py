"""The Pusher publishes a version whole or not at all, with TFX's own artifacts and executor."""

import resource
import signal
from pathlib import Path

import pytest
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.atomic_pusher import STAGING, AtomicPushExecutor
from tests.fixtures import fill, small_filesystem


def push(
    tmp_path, model_bytes: int = 1000, file_size_limit: int | None = None, base: Path | None = None
):
    """Runs the executor on a blessed model whose saved_model.pb holds `model_bytes`, pushing to
    `base` (default: tmp_path/base); with a file size limit (RLIMIT_FSIZE), writes past it fail
    as on a full disk."""
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    serving = tmp_path / "model" / "Format-Serving"
    (serving / "variables").mkdir(parents=True, exist_ok=True)
    (serving / "variables" / "variables.index").write_bytes(b"index")
    (serving / "saved_model.pb").write_bytes(b"m" * model_bytes)
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", 1)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(
            base_directory=str(base or tmp_path / "base")
        )
    )
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit or soft, hard))
    try:
        AtomicPushExecutor().Do(
            {"model": [model], "model_blessing": [blessing]},
            {"pushed_model": [pushed]},
            {"push_destination": proto_utils.proto_to_json(destination)},
        )
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    return pushed


def test_a_version_is_published_whole_and_the_artifact_names_it(tmp_path):
    (tmp_path / "base" / STAGING / "1796000000").mkdir(parents=True)  # a killed push's folder
    pushed = push(tmp_path)
    (version,) = (tmp_path / "base").iterdir()  # the staging folder is gone
    assert version.name.isdigit() and (version / "saved_model.pb").stat().st_size == 1000
    assert (version / "variables" / "variables.index").read_bytes() == b"index"
    assert pushed.get_string_custom_property("pushed_destination") == str(version)


def test_a_push_cut_by_a_file_size_limit_publishes_nothing(tmp_path):
    with pytest.raises(Exception, match="(?i)too large"):
        push(tmp_path, model_bytes=200_000, file_size_limit=100_000)
    assert list((tmp_path / "base").iterdir()) == []  # no numbered folder, no partial copy


@pytest.mark.parametrize("free_kb", [0, 8, 100, 300, 380])  # a 391 KB model, 4 KB pages
def test_a_push_onto_a_full_disk_publishes_nothing_and_keeps_the_served_version(tmp_path, free_kb):
    with small_filesystem(tmp_path / "disk", 2 * 2**20) as disk:
        served = disk / "base" / "1700000000"
        served.mkdir(parents=True)
        (served / "saved_model.pb").write_bytes(b"s" * 1000)
        fill(disk, free_kb * 1024)
        with pytest.raises(Exception, match="No space left on device") as failure:
            push(tmp_path, model_bytes=400_000, base=disk / "base")
        print(f"\n{free_kb} KB free: {type(failure.value).__name__}: {failure.value}")
        assert [p.name for p in (disk / "base").iterdir()] == [served.name]
        assert (served / "saved_model.pb").read_bytes() == b"s" * 1000
