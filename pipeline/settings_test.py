import logging
import subprocess
import sys

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.util import assert_that, equal_to
from tfx.utils import dependency_utils

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


@pytest.mark.parametrize("mode", ["in_memory", "multi_processing"])
def test_beam_runs_on_the_named_direct_runner_without_prism_or_packaging(mode, caplog):
    args = Settings(beam_direct_running_mode=mode, beam_direct_num_workers=2).beam_pipeline_args()
    assert dependency_utils.make_beam_dependency_flags(args) == args  # TFX packages nothing
    options = PipelineOptions(args)
    assert options.view_as(StandardOptions).runner == "DirectRunner"
    with caplog.at_level(logging.INFO):
        with beam.Pipeline(options=options) as pipeline:
            doubled = pipeline | beam.Create([1, 2, 3]) | beam.Map(lambda x: 2 * x)
            assert_that(doubled, equal_to([2, 4, 6]))
    assert "prism" not in caplog.text.lower() and "download" not in caplog.text.lower()


def test_a_beam_mode_or_span_count_no_runner_honours_is_refused_naming_it():
    with pytest.raises(SettingsError, match="BEAM_DIRECT_RUNNING_MODE=prism: Beam's DirectRunner"):
        Settings.from_env({"BEAM_DIRECT_RUNNING_MODE": "prism"})
    with pytest.raises(SettingsError, match="TRAIN_SPANS=0: expected 1 or more"):
        Settings.from_env({"TRAIN_SPANS": "0"})
