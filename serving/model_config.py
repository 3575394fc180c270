"""TF Serving's model config (`--model_config_file`, or a HandleReloadConfigRequest): a
text-format ModelServerConfig whose model_config_list names several models, each with a base
path, a version policy (`latest`, `all`, `specific`) and version labels. Checked as TF
Serving's ServerCore checks it (model_servers/server_core.cc), with its messages, and with the
line at fault where the config came from a file."""

import dataclasses
import re
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

TENSORFLOW_PLATFORM = "tensorflow"


class ConfigError(ValueError):
    """A config the server refuses; at start-up it does not start, on a reload the running
    configuration stays."""


@dataclasses.dataclass(frozen=True)
class VersionPolicy:
    """Which versions on disk are served: the `num_versions` highest (`latest`, TF Serving's
    default with 1), `all`, or the `specific` ones listed."""

    kind: str = "latest"
    num_versions: int = 1
    versions: frozenset[int] = frozenset()

    def wanted(self, on_disk: list[int]) -> list[int]:
        """The versions to serve, highest first; `latest` stops at `num_versions` that load."""
        highest_first = sorted(on_disk, reverse=True)
        if self.kind == "specific":
            return [version for version in highest_first if version in self.versions]
        return highest_first

    @property
    def count(self) -> int | None:
        """How many versions are served at most (None: every wanted one)."""
        return self.num_versions if self.kind == "latest" else None


LATEST = VersionPolicy()  # TF Serving's default: the highest version


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: Path
    policy: VersionPolicy = LATEST
    labels: tuple[tuple[str, int], ...] = ()  # (label, version), sorted by label
    where: str = ""  # "<file> line N: " of the model's entry, for messages
    label_lines: tuple[tuple[str, str], ...] = ()  # (label, where)

    def label_where(self, label: str) -> str:
        return dict(self.label_lines).get(label, self.where)


def _policy(config: model_server_config_pb2.ModelConfig) -> VersionPolicy:
    policy = config.model_version_policy
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return VersionPolicy("all")
    if choice == "specific":
        return VersionPolicy("specific", versions=frozenset(policy.specific.versions))
    # TF Serving serves at least one version of a `latest` policy (num_versions 0 reads as 1).
    return VersionPolicy("latest", num_versions=max(policy.latest.num_versions, 1))


def _entry_lines(text: str) -> list[int]:
    """The line (from 1) of each `config` entry of the model_config_list, in order."""
    code = re.sub(r"#[^\n]*", "", text)  # comments out, line breaks kept
    return [code.count("\n", 0, m.start()) + 1 for m in re.finditer(r"\bconfig\s*[{:<]", code)]


def _label_line(text: str, start: int, label: str) -> int:
    """The line, at or after `start`, naming `label` as a version label's key."""
    pattern = re.compile(r"\bkey\s*:\s*[\"']" + re.escape(label) + r"[\"']")
    for number, line in enumerate(text.splitlines()[start - 1 :], start):
        if pattern.search(line):
            return number
    return start


def _platform(entry: model_server_config_pb2.ModelConfig, where: str) -> str:
    """`model_platform`, or the deprecated `model_type`, as TF Serving's GetPlatform reads them."""
    if entry.model_type == model_server_config_pb2.MODEL_TYPE_UNSPECIFIED:
        if not entry.model_platform:
            raise ConfigError(
                f"{where}Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
                f"ModelServerConfig::model_platform, model name is {entry.name}"
            )
        return entry.model_platform
    if entry.model_platform:
        raise ConfigError(
            f"{where}Illegal setting both ModelServerConfig::model_type (deprecated) and "
            f"ModelServerConfig::model_platform, model name is {entry.name}"
        )
    if entry.model_type != model_server_config_pb2.TENSORFLOW:
        raise ConfigError(
            f"{where}ModelServerConfig::model_type choice {entry.model_type} not supported."
        )
    return TENSORFLOW_PLATFORM


def model_configs(
    config: model_server_config_pb2.ModelServerConfig, text: str = "", source: str = ""
) -> list[ModelConfig]:
    """The models a ModelServerConfig lists, checked; `text` and `source` (its file), if given,
    name the line at fault in messages."""
    if config.WhichOneof("config") != "model_config_list":
        raise ConfigError(
            f"{source}: ServerModelConfig type not supported. Only ModelConfigList is currently "
            "supported"
        )
    entries = _entry_lines(text) if text else []
    models, names = [], set()
    for index, entry in enumerate(config.model_config_list.config):
        line = entries[index] if index < len(entries) else 0
        where = f"{source} line {line}: " if line else ""
        if entry.name in names:
            raise ConfigError(
                f"{where}Illegal to list model {entry.name} multiple times in config list"
            )
        names.add(entry.name)
        platform = _platform(entry, where)
        if platform != TENSORFLOW_PLATFORM:
            raise ConfigError(f"{where}Model {entry.name} requests unsupported platform {platform}")
        base_path = Path(entry.base_path)
        if not base_path.is_absolute():
            raise ConfigError(
                f"{where}Expected model {entry.name} to have an absolute path or URI; got "
                f"base_path()={entry.base_path}"
            )
        if not base_path.is_dir():
            raise ConfigError(f"{where}Model {entry.name}: base_path {base_path} is not a folder")
        policy = _policy(entry)
        if policy.kind == "specific" and not policy.versions:
            raise ConfigError(f"{where}Model {entry.name}: a specific policy lists no versions")
        labels = tuple(sorted(entry.version_labels.items()))
        label_lines = tuple(
            (label, f"{source} line {_label_line(text, line, label)}: " if line else "")
            for label, _ in labels
        )
        models.append(ModelConfig(entry.name, base_path, policy, labels, where, label_lines))
    return models


def parse_model_config(text: str, source: str) -> list[ModelConfig]:
    """The models of a text-format ModelServerConfig, checked."""
    try:
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as error:  # its text starts "line:column : "
        raise ConfigError(f"{source} line {error}") from None
    return model_configs(config, text, source)


def read_model_config(path: Path) -> list[ModelConfig]:
    """The models of a model config file, checked."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read: {error}") from None
    return parse_model_config(text, str(path))
