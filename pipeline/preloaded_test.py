"""`python -m` in a fork of a preloaded interpreter: arguments, environment, working directory,
the two output streams, exit status and timeout, as a new process would have them."""

import pytest

from pipeline.preloaded import run_module, start_preloading


@pytest.fixture(scope="module", autouse=True)
def preloaded():
    start_preloading(["pipeline.settings"])


def test_the_module_runs_with_the_given_environment_and_streams(tmp_path):
    out, err = tmp_path / "out", tmp_path / "err"
    status = run_module("pipeline.settings", ["model_name"], out, err, env={"MODEL_NAME": "digits"})
    assert (status, out.read_text(), err.read_text()) == (0, "digits\n", "")
    status = run_module("pipeline.settings", ["no_such_setting"], out, err, env={})
    assert status == 2 and err.read_text() == "error: no setting 'no_such_setting'\n"
    assert out.read_text() == "digits\n"  # appended to, not replaced


def test_relative_paths_are_read_from_the_working_directory(tmp_path):
    (tmp_path / "in.json").write_text('{"a": 1}')
    status = run_module("json.tool", ["--compact", "in.json"], tmp_path / "out", cwd=tmp_path)
    assert status == 0 and (tmp_path / "out").read_text() == '{"a":1}\n'


def test_a_run_past_its_timeout_is_killed(tmp_path):
    with pytest.raises(TimeoutError, match="python -m timeit ran longer than 0.5 s"):
        run_module(
            "timeit", ["-n1", "import time; time.sleep(30)"], tmp_path / "out", timeout_s=0.5
        )


def test_temporary_files_follow_the_given_tmpdir(tmp_path):
    status = run_module(
        "timeit",
        ["-n1", "-r1", "import tempfile; print(tempfile.gettempdir())"],
        tmp_path / "out",
        env={"TMPDIR": str(tmp_path)},
    )
    assert status == 0 and (tmp_path / "out").read_text().startswith(f"{tmp_path}\n")


def test_the_modules_exit_handlers_run_when_it_ends(tmp_path):
    status = run_module(
        "timeit",
        ["-n1", "-r1", "import atexit; atexit.register(print, 'exit handler ran')"],
        tmp_path / "out",
    )
    assert status == 0 and (tmp_path / "out").read_text().endswith("exit handler ran\n")
