"""The TFX CLI (`tfx pipeline create`, `tfx run create`, local engine) drives local_runner.py."""

import os
import subprocess
import sys
from pathlib import Path

from components.data.sample import write_sample
from pipeline.settings import PROJECT_ROOT, Settings
from tests.pipeline_runs import SMALL_RUN, served_versions, settings_for

TFX_CLI = Path(sys.executable).parent / "tfx"


def test_tfx_cli_creates_and_runs_the_pipeline(tmp_path):
    output_dir = tmp_path / "outputs"
    write_sample(settings_for(output_dir).default_sample_root, size=300, seed=0)
    env = {
        **os.environ,
        **SMALL_RUN,
        "EPOCHS": "1",
        "EVAL_ACCURACY_THRESHOLD": "0",
        "OUTPUT_DIR": str(output_dir),
        "HOME": str(tmp_path),  # the CLI keeps its pipeline registry under $HOME/tfx/local
    }

    def tfx_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(TFX_CLI), *args, "--engine", "local"],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )

    created = tfx_cli("pipeline", "create", "--pipeline_path", "pipeline/local_runner.py")
    assert created.returncode == 0, created.stdout[-2000:] + created.stderr[-3000:]
    assert f'Pipeline "{Settings().pipeline_name}" created successfully' in created.stdout
    assert (tmp_path / "tfx" / "local" / Settings().pipeline_name).is_dir()

    ran = tfx_cli("run", "create", "--pipeline_name", Settings().pipeline_name)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-3000:]
    versions = served_versions(output_dir)
    assert len(versions) == 1 and next(iter(versions)).isdigit()
