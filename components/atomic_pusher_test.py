"""The Pusher publishes a version whole or not at all, with TFX's own artifacts and executor."""

import resource
import signal

import pytest
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.atomic_pusher import STAGING, AtomicPushExecutor


def push(tmp_path, model_bytes: int = 1000, file_size_limit: int | None = None):
    """Runs the executor on a blessed model whose saved_model.pb holds `model_bytes`; with a
    file size limit (RLIMIT_FSIZE), writes past it fail as on a full disk."""
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
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(tmp_path / "base"))
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


def test_a_push_cut_by_a_full_file_system_publishes_nothing(tmp_path):
    with pytest.raises(Exception, match="(?i)too large"):
        push(tmp_path, model_bytes=200_000, file_size_limit=100_000)
    assert [p.name for p in (tmp_path / "base").iterdir()] == [STAGING]  # no numbered folder
