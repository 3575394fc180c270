import subprocess
import sys

import pytest

from pipeline.settings import PROJECT_ROOT, Settings, SettingsError
from trainer.config import TrainingConfig, trainer_code_version


def test_environment_sets_every_group_with_its_type(tmp_path):
    settings = Settings.from_env(
        {
            "OUTPUT_DIR": str(tmp_path),
            "PIPELINE_NAME": "p",
            "EPOCHS": "5",
            "LEARNING_RATE": "1e-3",
            "JIT_COMPILE": "1",
            "TRAINING_SEED": "7",
            "EVAL_ACCURACY_THRESHOLD": "0.9",
            "WARM_START": "true",
            "TRAIN_SPANS": "",  # empty means unset
        }
    )
    assert settings.training == TrainingConfig(
        epochs=5, learning_rate=1e-3, jit_compile=True, seed=7, code_version=trainer_code_version()
    )
    assert settings.gates.accuracy_floor == 0.9 and settings.warm_start
    assert settings.train_spans == Settings().train_spans
    assert settings.metadata_path == tmp_path / "metadata" / "p.sqlite"


def test_output_dir_moves_every_path_derived_from_it(tmp_path):
    settings = Settings.from_env({}, output_dir=tmp_path)
    derived = [
        settings.pipeline_root,
        settings.metadata_path,
        settings.serving_model_dir,
        settings.log_dir,
        settings.report_dir,
        settings.schema_output_dir,
        settings.sample_root,
        settings.kubeflow_spec_path,
    ]
    assert all(path.is_relative_to(tmp_path) for path in derived)
    assert Settings().output_dir == PROJECT_ROOT / "outputs"


def test_a_value_of_the_wrong_type_names_the_variable():
    with pytest.raises(SettingsError, match="EPOCHS=many: expected int"):
        Settings.from_env({"EPOCHS": "many"})
    with pytest.raises(SettingsError, match="ENABLE_CACHE=maybe"):
        Settings.from_env({"ENABLE_CACHE": "maybe"})


def test_settings_load_without_tensorflow():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pipeline.settings, kubeflow.settings; print('tensorflow' in sys.modules)",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "False"
