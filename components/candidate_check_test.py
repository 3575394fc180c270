"""Which SavedModels count as the same: the same fingerprint."""

from components.candidate_check import FINGERPRINT, same_saved_model


def saved_model(folder, fingerprint: bytes | None) -> str:
    folder.mkdir(parents=True)
    if fingerprint is not None:
        (folder / FINGERPRINT).write_bytes(fingerprint)
    return str(folder)


def test_saved_models_are_the_same_when_their_fingerprints_are(tmp_path):
    candidate = saved_model(tmp_path / "Trainer" / "Format-Serving", b"weights A")
    assert same_saved_model(candidate, saved_model(tmp_path / "serving" / "2", b"weights A"))
    assert not same_saved_model(candidate, saved_model(tmp_path / "serving" / "1", b"weights B"))


def test_a_folder_without_a_fingerprint_or_gone_holds_no_model(tmp_path):
    candidate = saved_model(tmp_path / "Format-Serving", b"weights A")
    assert not same_saved_model(candidate, saved_model(tmp_path / "serving" / "1", None))
    assert not same_saved_model(candidate, str(tmp_path / "deleted"))
