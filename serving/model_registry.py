"""The models a server serves, by name, and their version labels: what a request's model spec
(name, and a version or a label) resolves against. A config reload loads what it adds, checks its
labels against the versions then available, and takes effect whole, or not at all."""

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


class ModelRegistry:
    """Models by name with their labels. Requests read a consistent snapshot without locking;
    reloads run one at a time."""

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
        self._models: dict[str, VersionedModel] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self._configs: list[ModelConfig] = []
        self._reload_lock = threading.Lock()

    @classmethod
    def of(cls, *models: VersionedModel) -> "ModelRegistry":
        """A registry of models already started, without labels (the demo, the tests)."""
        registry = cls()
        registry._models = {model.name: model for model in models}
        return registry

    @property
    def names(self) -> list[str]:
        return sorted(self._models)

    @property
    def configs(self) -> list[ModelConfig]:
        return self._configs

    def model(self, name: str) -> VersionedModel:
        model = self._models.get(name)
        if model is None:
            raise LookupError(f"Servable not found for request: Latest({name})")
        return model

    def resolve(self, name: str, version: int | None, label: str | None) -> LoadedVersion:
        """The version a request names: the highest served, a number, or a label's version as
        it is when the request arrives (a label moved later does not change it)."""
        model = self.model(name)
        if label:
            version = self._labels.get(name, {}).get(label)
            if version is None:
                raise UnknownLabel(f"Unrecognized servable version label: {label}")
        return model.get(version)

    def labels(self, name: str) -> dict[str, int]:
        return dict(self._labels.get(name, {}))

    def apply(self, configs: list[ModelConfig]) -> None:
        """Serves `configs` from now on: new models (or new base paths) are loaded and changed
        policies applied before the labels are checked; if a label names a version that is not
        available, ConfigError, and the running configuration stays as it was."""
        with self._reload_lock:
            old_models, old_configs = self._models, {c.name: c for c in self._configs}
            models, started, changed = {}, [], []
            try:
                for config in configs:
                    model = old_models.get(config.name)
                    if model is None or model.base_path != config.base_path:
                        model = VersionedModel(
                            config.name,
                            config.base_path,
                            self.poll_interval_s,
                            self.on_load,
                            config.policy,
                        )
                        started.append(model)
                        model.start()
                    elif model.policy != config.policy:
                        changed.append(model)
                        model.set_policy(config.policy)
                    models[config.name] = model
                labels = {c.name: self._checked_labels(c, models[c.name]) for c in configs}
            except ConfigError:
                for model in started:
                    model.stop()
                for model in changed:
                    model.set_policy(old_configs[model.name].policy)
                raise
            self._models, self._labels, self._configs = models, labels, list(configs)
            for name, model in old_models.items():
                if models.get(name) is not model:
                    model.stop()
                    log.info("Model %s is no longer served", name)

    def _checked_labels(self, config: ModelConfig, model: VersionedModel) -> dict[str, int]:
        """The config's labels, each naming an available version (TF Serving's rule)."""
        available = {v for v, state in model.states().items() if state.state == "AVAILABLE"}
        current = self._labels.get(config.name, {})
        for label, version in config.labels:
            unmoved = current.get(label, version) == version
            if version in available or (self.allow_labels_for_unavailable and unmoved):
                continue
            raise LabelError(
                f"{config.label_where(label)}Request to assign label to version {version} of "
                f"model {config.name}, which is not currently available for inference"
            )
        return dict(config.labels)

    def stop(self) -> None:
        for model in self._models.values():
            model.stop()
