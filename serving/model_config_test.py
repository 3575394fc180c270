"""TF Serving's model config text read and checked as its ServerCore does, each refusal naming
the line at fault (server_core_test.cc: DuplicateModelNameInConfig, RelativePathFails,
UnknownModelPlatform, IllegalConfigModelTypeAndPlatformSet's neither-set case)."""

import re
from pathlib import Path

import pytest

from serving.model_config import ConfigError, VersionPolicy, parse_model_config, read_model_config

PROJECT_CONFIG = Path(__file__).with_name("models.config")


def two_models(root: Path, **changes: str) -> str:
    """A config of models `a` (all versions, labels) and `b` (versions 1 and 2), with parts
    replaced by `changes`."""
    parts = {
        "a_path": str(root / "a"),
        "b_path": str(root / "b"),
        "b_name": "b",
        "platform": 'model_platform: "tensorflow"',
        "labels": 'version_labels { key: "stable" value: 1 }\n    '
        'version_labels { key: "canary" value: 2 }',
        **changes,
    }
    (root / "a").mkdir(exist_ok=True)
    (root / "b").mkdir(exist_ok=True)
    return f"""model_config_list {{
  config {{
    name: "a"
    base_path: "{parts["a_path"]}"
    {parts["platform"]}
    model_version_policy {{ all {{}} }}
    {parts["labels"]}
  }}
  config {{
    name: "{parts["b_name"]}"
    base_path: "{parts["b_path"]}"
    model_platform: "tensorflow"
    model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}
  }}
}}
"""


def test_models_policies_and_labels_are_read(tmp_path):
    a, b = parse_model_config(two_models(tmp_path), "models.config")
    assert (a.name, a.base_path, a.policy) == ("a", tmp_path / "a", VersionPolicy("all"))
    assert a.labels == (("canary", 2), ("stable", 1))
    assert a.label_where("canary") == "models.config line 8: "
    assert b.policy == VersionPolicy("specific", versions=frozenset({1, 2}))


def test_the_projects_own_config_parses_as_tf_serving_reads_it(tmp_path):
    """serving/models.config (for docker-compose) with its base path moved here."""
    text = PROJECT_CONFIG.read_text().replace("/models/mnist_cnn", str(tmp_path))
    (model,) = parse_model_config(text, "models.config")
    assert model.policy == VersionPolicy("latest", num_versions=2)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"b_name": "a"}, "line 10: Illegal to list model a multiple times in config list"),
        ({"a_path": "relative/a"}, "line 2: Expected model a to have an absolute path or URI"),
        ({"platform": ""}, "line 2: Illegal setting neither ModelServerConfig::model_type"),
        ({"platform": 'model_platform: "tflite"'}, "line 2: Model a requests unsupported platform"),
        (
            {"platform": 'model_platform: "tensorflow" model_type: TENSORFLOW'},
            "line 2: Illegal setting both ModelServerConfig::model_type (deprecated) and",
        ),
        ({"b_path": "/no/such/folder"}, "line 10: Model b: base_path /no/such/folder is not"),
        ({"labels": "version_labels { key: 1 }"}, "line 7:27 : '    version_labels { key: 1 }'"),
        ({"platform": "unknown_field: 1"}, 'line 5:5 : Message type "tensorflow.serving.Model'),
    ],
)
def test_a_config_tf_serving_would_refuse_is_refused_naming_its_line(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=re.escape(f"models.config {message}")):
        parse_model_config(two_models(tmp_path, **changes), "models.config")


def test_the_deprecated_model_type_still_names_the_platform(tmp_path):
    """DeprecatedModelTypeConfig."""
    text = two_models(tmp_path, platform="model_type: TENSORFLOW")
    assert parse_model_config(text, "models.config")[0].name == "a"


def test_entries_on_one_line_are_each_named_by_their_line(tmp_path):
    (tmp_path / "a").mkdir()
    entry = f'config {{ name: "a" base_path: "{tmp_path / "a"}" model_platform: "tensorflow" }}'
    text = f"model_config_list {{ {entry} {entry}\n}}"
    with pytest.raises(ConfigError, match="models.config line 1: Illegal to list model a"):
        parse_model_config(text, "models.config")


def test_a_file_that_cannot_be_read_is_named(tmp_path):
    with pytest.raises(ConfigError, match=f"{tmp_path / 'missing.config'}: cannot be read"):
        read_model_config(tmp_path / "missing.config")
