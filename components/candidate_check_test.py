"""Which SavedModels count as served: the same fingerprint in a version folder."""

from components.candidate_check import FINGERPRINT, is_served


def saved_model(folder, fingerprint: bytes):
    folder.mkdir(parents=True)
    (folder / FINGERPRINT).write_bytes(fingerprint)
    return str(folder)


def test_a_model_is_served_when_a_version_folder_holds_its_fingerprint(tmp_path):
    base = tmp_path / "serving_model"
    candidate = saved_model(tmp_path / "Trainer" / "Format-Serving", b"weights A")
    assert not is_served(candidate, str(base))  # nothing pushed yet
    saved_model(base / "1", b"weights B")
    assert not is_served(candidate, str(base))  # another model
    saved_model(base / "2", b"weights A")
    assert is_served(candidate, str(base))
    (base / "3").mkdir()  # a version folder being written
    assert is_served(candidate, str(base))


def test_a_model_without_a_fingerprint_is_never_taken_for_a_served_one(tmp_path):
    base = tmp_path / "serving_model"
    (base / "1").mkdir(parents=True)
    candidate = tmp_path / "Format-Serving"
    candidate.mkdir()
    assert not is_served(str(candidate), str(base))
