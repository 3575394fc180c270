import socket
import time

import pytest

from kubeflow import submit


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text("{}")
    return path


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_vertex_without_credentials_fails_at_once(spec, no_credentials, capsys):
    started = time.monotonic()
    assert submit.main(["vertex", "--spec", str(spec)]) == 2
    assert time.monotonic() - started < 5
    assert "No Google Cloud credentials" in capsys.readouterr().err


def test_kfp_without_endpoint_fails(spec, monkeypatch, capsys):
    monkeypatch.delenv("KFP_ENDPOINT", raising=False)
    assert submit.main(["kfp", "--spec", str(spec)]) == 2
    assert "No Kubeflow Pipelines endpoint" in capsys.readouterr().err


def test_kfp_endpoint_that_does_not_answer_is_named(spec, capsys):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    assert submit.main(["kfp", "--spec", str(spec), "--endpoint", endpoint]) == 2
    assert f"Kubeflow Pipelines at {endpoint} did not answer" in capsys.readouterr().err


def test_missing_spec_says_how_to_make_it(tmp_path, capsys):
    assert submit.main(["kfp", "--spec", str(tmp_path / "none.json")]) == 2
    assert "make kubeflow" in capsys.readouterr().err
