import json

import pytest

from trainer.config import TrainingConfig, trainer_code_version


def test_custom_config_round_trip_through_json_as_tfx_stores_it():
    config = TrainingConfig(epochs=3, learning_rate=1e-3, jit_compile=True, code_version="abc")
    stored = json.loads(json.dumps({**config.to_custom_config(), "ai_platform_training_args": {}}))
    assert TrainingConfig.from_custom_config(stored) == config


def test_a_missing_field_is_named():
    stored = TrainingConfig().to_custom_config()
    del stored["label_smoothing"]
    with pytest.raises(KeyError, match="label_smoothing"):
        TrainingConfig.from_custom_config(stored)


def test_code_version_is_a_stable_digest_of_the_trainer_source():
    assert trainer_code_version() == trainer_code_version()
    assert len(trainer_code_version()) == 16
