"""Serves a model base path the way TF Serving does: `<base>/<version>/saved_model.pb`, the
highest version served, new versions picked up by polling, a version that fails to load
reported and skipped while the previous one keeps serving (at start, the highest version that
loads is served)."""

import dataclasses
import logging
import threading
from pathlib import Path

import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LoadedVersion:
    version: int
    model: object  # what tf.saved_model.load returns; its signatures are served
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]


@dataclasses.dataclass
class VersionState:
    state: str  # a ModelVersionStatus.State name: LOADING, AVAILABLE, END
    error: str = ""  # why loading failed, for END versions that never served


def load_version(path: Path) -> LoadedVersion:
    """Loads one version folder; the SignatureDefs come from saved_model.pb for metadata."""
    saved_model = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    signature_defs = {
        name: signature
        for name, signature in saved_model.meta_graphs[0].signature_def.items()
        if not name.startswith("__")
    }
    return LoadedVersion(int(path.name), tf.saved_model.load(str(path)), signature_defs)


class VersionedModel:
    """One model name over a base path; thread-safe, polled from a background thread."""

    def __init__(self, name: str, base_path: Path, poll_interval_s: float = 1.0):
        self.name = name
        self.base_path = Path(base_path)
        self.poll_interval_s = poll_interval_s
        self._served: LoadedVersion | None = None
        self._states: dict[int, VersionState] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._poller: threading.Thread | None = None

    def available_versions(self) -> list[int]:
        """Numeric version folders whose saved_model.pb is in place (the Pusher writes it last)."""
        if not self.base_path.is_dir():
            return []
        return sorted(
            int(path.name)
            for path in self.base_path.iterdir()
            if path.name.isdigit() and (path / "saved_model.pb").is_file()
        )

    def poll(self) -> None:
        """Loads the highest version not tried yet that is newer than the served one, falling
        back to lower ones when it fails; a loaded version replaces the served one. Requests
        already running keep the version they started with."""
        served = self._served.version if self._served else -1
        for version in reversed(self.available_versions()):
            if version <= served:
                return
            if version not in self._states and self._load(version):
                return

    def _load(self, version: int) -> bool:
        with self._lock:
            self._states[version] = VersionState("LOADING")
        try:
            loaded = load_version(self.base_path / str(version))
        except Exception as error:  # a broken SavedModel must not take the server down
            log.error("Model %s version %d failed to load: %s", self.name, version, error)
            with self._lock:
                self._states[version] = VersionState("END", f"failed to load: {error}")
            return False
        with self._lock:
            previous, self._served = self._served, loaded
            self._states[version] = VersionState("AVAILABLE")
            if previous:
                self._states[previous.version] = VersionState("END")
        log.info("Model %s version %d is being served", self.name, version)
        return True

    def get(self, version: int | None = None) -> LoadedVersion:
        """The served version (or `version` if that is the served one); LookupError otherwise."""
        served = self._served
        if served is None:
            raise LookupError(f"Model {self.name} has no servable version in {self.base_path}")
        if version is not None and version != served.version:
            raise LookupError(f"Model {self.name} version {version} is not being served")
        return served

    def states(self) -> dict[int, VersionState]:
        with self._lock:
            return dict(sorted(self._states.items()))

    def start(self) -> None:
        """Loads what is there now, then polls in the background."""
        self.poll()
        self._poller = threading.Thread(target=self._poll_forever, daemon=True, name="poller")
        self._poller.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._poller:
            self._poller.join()

    def _poll_forever(self) -> None:
        while not self._stopped.wait(self.poll_interval_s):
            try:
                self.poll()
            except Exception:  # keep polling whatever one scan hit (e.g. a folder removed)
                log.exception("Polling %s failed", self.base_path)
