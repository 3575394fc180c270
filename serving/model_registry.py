"""The models a server serves, by name, and their version labels: what a request's model spec
(name, and a version or a label) resolves against. A config reload loads what it adds, checks its
labels against the versions then available, and takes effect whole, or not at all."""

import dataclasses
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from serving.model_config import ConfigError, ModelConfig
from serving.model_store import LoadedVersion, VersionedModel

log = logging.getLogger(__name__)


class UnknownLabel(LookupError):
    """A version label no version of the model carries (INVALID_ARGUMENT, as in TF Serving)."""


class LabelError(ConfigError):
    """A config's label that names a version not available (FAILED_PRECONDITION there)."""


@dataclasses.dataclass(frozen=True)
class Served:
    """One configuration as requests see it: replaced whole, in one assignment, by a reload."""

    models: dict[str, VersionedModel]
    labels: dict[str, dict[str, int]]
    configs: tuple[ModelConfig, ...] = ()


class ModelRegistry:
    """Models by name with their labels. Requests read one consistent snapshot without
    locking; reloads run one at a time."""

    def __init__(
        self,
        poll_interval_s: float = 1.0,
        on_load: Callable[[Path, bool, float], None] | None = None,
        allow_labels_for_unavailable: bool = False,
    ):
        self.poll_interval_s = poll_interval_s
        self.on_load = on_load
        # TF Serving's --allow_version_labels_for_unavailable_models: a new label may name a
        # version not loaded yet; a label already in use still moves only to a loaded one.
        self.allow_labels_for_unavailable = allow_labels_for_unavailable
        self._served = Served({}, {})
        self._reload_lock = threading.Lock()

    @classmethod
    def of(cls, *models: VersionedModel) -> "ModelRegistry":
        """A registry of models already started, without labels (the demo, the tests)."""
        registry = cls()
        registry._served = Served({model.name: model for model in models}, {})
        return registry

    @property
    def names(self) -> list[str]:
        return sorted(self._served.models)

    @property
    def configs(self) -> list[ModelConfig]:
        return list(self._served.configs)

    def model(self, name: str, served: Served | None = None) -> VersionedModel:
        """The model `name` of the configuration serving now (or of the snapshot `served`)."""
        model = (served or self._served).models.get(name)
        if model is None:
            raise LookupError(f"Servable not found for request: Latest({name})")
        return model

    def resolve(self, name: str, version: int | None, label: str | None) -> LoadedVersion:
        """The version a request names: the highest served, a number, or a label's version as
        it is when the request arrives (a label moved later does not change it)."""
        served = self._served
        if label is not None:  # looked up first, as TF Serving does: even for unknown models
            version = served.labels.get(name, {}).get(label)
            if version is None:
                raise UnknownLabel(f"Unrecognized servable version label: {label}")
        return self.model(name, served).get(version)

    def labels(self, name: str) -> dict[str, int]:
        return dict(self._served.labels.get(name, {}))

    def apply(self, configs: list[ModelConfig]) -> None:
        """Serves `configs` from now on, all at once or not at all: a model that is new, or
        whose base path or policy changes, is loaded afresh beside the one serving (keeping the
        versions both serve loaded), the labels are checked against what the new models
        serve, and only then do requests see the new configuration. On any failure (ConfigError
        for a label naming a version that is not available) the running one stays untouched."""
        with self._reload_lock:
            current = self._served
            models, started = {}, []
            try:
                for config in configs:
                    model = current.models.get(config.name)
                    if model is None or (model.base_path, model.policy) != (
                        config.base_path,
                        config.policy,
                    ):
                        kept = (
                            model.loaded() if model and model.base_path == config.base_path else {}
                        )
                        model = VersionedModel(
                            config.name,
                            config.base_path,
                            self.poll_interval_s,
                            self.on_load,
                            config.policy,
                            kept,
                        )
                        started.append(model)
                        model.start()
                    models[config.name] = model
                labels = {
                    c.name: self._checked_labels(c, models[c.name], current.labels) for c in configs
                }
            except BaseException:
                for model in started:
                    model.stop()
                raise
            self._served = Served(models, labels, tuple(configs))
            for name, model in current.models.items():
                if models.get(name) is not model:
                    model.stop()
                    if name not in models:
                        log.info("Model %s is no longer served", name)

    def _checked_labels(
        self, config: ModelConfig, model: VersionedModel, current: dict[str, dict[str, int]]
    ) -> dict[str, int]:
        """The config's labels, each naming an available version (TF Serving's rule)."""
        available = {v for v, state in model.states().items() if state.state == "AVAILABLE"}
        in_use = current.get(config.name, {})
        for label, version in config.labels:
            unmoved = in_use.get(label, version) == version
            if version in available or (self.allow_labels_for_unavailable and unmoved):
                continue
            raise LabelError(
                f"{config.label_where(label)}Request to assign label to version {version} of "
                f"model {config.name}, which is not currently available for inference"
            )
        return dict(config.labels)

    def stop(self) -> None:
        with self._reload_lock:
            for model in self._served.models.values():
                model.stop()
