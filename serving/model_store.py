"""Serves a model base path as TF Serving does: `<base>/<version>/saved_model.pb`, polled from
disk, the versions a version policy names (`latest` by default: the highest version that loads).

A version folder that changes (replaced or fixed) is loaded again; a served version removed from
disk is unloaded and the next takes over, at once: each request checks that its version is still
on disk, and the versions served before stay loaded for such a rollback. A version that fails to
load is reported and skipped while the one before keeps serving. Status lists only the versions
on disk, each with its most recent failure.
"""

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from serving.model_config import LATEST, VersionPolicy
from trainer.features import SERVING_DEFAULT_SIGNATURE, WARMUP_FILE

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LoadedVersion:
    version: int
    model: object  # what tf.saved_model.load returns; its signatures are served
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]
    fingerprint: tuple  # of the folder when it was loaded
    warmup_requests: int = 0  # replayed before it was served


@dataclasses.dataclass(frozen=True)
class VersionState:
    state: str  # a ModelVersionStatus.State name: LOADING, AVAILABLE, END
    error: str = ""  # the most recent failure to load this version


def fingerprint(path: Path) -> tuple:
    """What changes when a version folder is replaced or fixed: every file's name, size and
    modification time."""
    return tuple(
        sorted(
            (str(file.relative_to(path)), stat.st_size, stat.st_mtime_ns)
            for file in path.rglob("*")
            if file.is_file() and (stat := file.stat())
        )
    )


def load_version(path: Path, folder_fingerprint: tuple) -> LoadedVersion:
    """Loads one version folder, whose `fingerprint` was taken before; the SignatureDefs come
    from saved_model.pb for metadata."""
    saved_model = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    signature_defs = {
        name: signature
        for name, signature in saved_model.meta_graphs[0].signature_def.items()
        if not name.startswith("__")
    }
    model = tf.saved_model.load(str(path))
    warmed = warm_up(model, path / WARMUP_FILE)
    return LoadedVersion(int(path.name), model, signature_defs, folder_fingerprint, warmed)


MAX_WARMUP_REQUESTS = 1000  # TF Serving's limit


def warm_up(model, records: Path) -> int:
    """Replays a version's warm-up Predict requests, as TF Serving does before a version turns
    AVAILABLE; returns how many. A request that fails fails the load, as there."""
    if not records.exists():
        return 0
    count = 0
    for serialized in tf.data.TFRecordDataset(str(records)).take(MAX_WARMUP_REQUESTS):
        record = prediction_log_pb2.PredictionLog.FromString(serialized.numpy())
        if record.WhichOneof("log_type") != "predict_log":
            raise ValueError(f"{records}: only Predict warm-up requests are replayed here")
        request = record.predict_log.request
        signature = model.signatures[request.model_spec.signature_name or SERVING_DEFAULT_SIGNATURE]
        signature(**{name: tf.make_ndarray(proto) for name, proto in request.inputs.items()})
        count += 1
    return count


class VersionedModel:
    """One model name over a base path; thread-safe, polled from a background thread.
    `on_load(path, succeeded, seconds)` hears of every load attempt (for metrics)."""

    def __init__(
        self,
        name: str,
        base_path: Path,
        poll_interval_s: float = 1.0,
        on_load: Callable[[Path, bool, float], None] | None = None,
        policy: VersionPolicy = LATEST,
        loaded: dict[int, LoadedVersion] | None = None,
    ):
        self.name = name
        self.base_path = Path(base_path)
        self.poll_interval_s = poll_interval_s
        self.on_load = on_load
        self.policy = policy
        self._served: dict[int, LoadedVersion] = {}
        # Served before (or by the model this one replaces: `loaded`): a rollback needs no load.
        self._standby: dict[int, LoadedVersion] = dict(loaded or {})
        self._failed: dict[int, tuple[tuple, str]] = {}  # version -> (fingerprint, error)
        self._loading: int | None = None
        self._on_disk: list[int] = []
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()  # one scan at a time: the poller's or a request's
        self._stopped = threading.Event()
        self._poller: threading.Thread | None = None

    def versions_on_disk(self) -> dict[int, Path]:
        """Numeric version folders whose saved_model.pb is in place (the Pusher writes it last)."""
        if not self.base_path.is_dir():
            return {}
        return {
            int(path.name): path
            for path in self.base_path.iterdir()
            if path.name.isdigit() and (path / "saved_model.pb").is_file()
        }

    def poll(self) -> None:
        """Serves the versions the policy wants that load, from the highest down, skipping those
        that failed unchanged; the set served changes at once when the scan ends, and requests
        already running keep the version they started with."""
        with self._poll_lock:
            self._scan()

    def _scan(self) -> None:
        on_disk = self.versions_on_disk()
        with self._lock:
            self._on_disk = sorted(on_disk)
            self._failed = {v: f for v, f in self._failed.items() if v in on_disk}
            known = {**self._standby, **self._served}
        serving: dict[int, LoadedVersion] = {}
        for version in self.policy.wanted(list(on_disk)):
            if len(serving) == self.policy.count:
                break
            path = on_disk[version]
            try:
                current = fingerprint(path)
            except OSError:  # removed while we looked
                continue
            kept = known.get(version)
            if kept and kept.fingerprint == current:
                serving[version] = kept
                continue
            failed = self._failed.get(version)
            if failed and failed[0] == current:
                continue
            loaded = self._load(version, path, current)
            if loaded:
                serving[version] = loaded
        self._publish(serving, on_disk)

    def _load(self, version: int, path: Path, folder_fingerprint: tuple) -> LoadedVersion | None:
        """Loads `version`; a failure is recorded against the folder as it was before the load,
        so that a folder still being written when the load failed is tried again."""
        with self._lock:
            self._loading = version
        started = time.monotonic()
        try:
            loaded = load_version(path, folder_fingerprint)
        except Exception as error:  # a broken SavedModel must not take the server down
            log.error("Model %s version %d failed to load: %s", self.name, version, error)
            with self._lock:
                self._failed[version] = (folder_fingerprint, str(error))
                self._loading = None
            self._report(path, False, started)
            return None
        with self._lock:
            self._loading = None
            self._failed.pop(version, None)
        if loaded.warmup_requests:
            log.info(
                "Model %s version %d warmed up with %d requests",
                self.name,
                version,
                loaded.warmup_requests,
            )
        self._report(path, True, started)
        return loaded

    def _publish(self, serving: dict[int, LoadedVersion], on_disk: dict[int, Path]) -> None:
        """Serves `serving`; the versions it drops stay loaded as the standby while the policy
        could serve them again (on disk, and wanted), so that a rollback needs no load."""
        wanted = set(self.policy.wanted(list(on_disk)))
        with self._lock:
            previous, self._served = self._served, serving
            dropped = {v: loaded for v, loaded in previous.items() if v not in serving}
            standby = dropped or self._standby
            self._standby = {v: loaded for v, loaded in standby.items() if v in wanted}
        if serving.keys() == previous.keys() and all(serving[v] is previous[v] for v in serving):
            return
        if len(serving) == len(previous) == 1 and serving.keys() != previous.keys():
            log.info(
                "Model %s version %d replaces version %d",
                self.name,
                *serving,
                *previous,
            )
        elif serving:
            log.info("Model %s serves versions %s", self.name, sorted(serving))
        else:
            log.warning("Model %s has no version to serve in %s", self.name, self.base_path)

    def _report(self, path: Path, succeeded: bool, started: float) -> None:
        if self.on_load:
            self.on_load(path, succeeded, time.monotonic() - started)

    def _pick(self, version: int | None) -> LoadedVersion | None:
        served = self._served
        if not served:
            return None
        return served[max(served)] if version is None else served.get(version)

    def get(self, version: int | None = None) -> LoadedVersion:
        """The highest served version, or `version` where it is served; LookupError otherwise,
        in TF Serving's words. A version whose folder left the disk is dropped first (a stat
        per request)."""
        loaded = self._pick(version)
        if loaded and not self._on_disk_still(loaded.version):
            self._forget(loaded.version)
            loaded = self._pick(version)
        if loaded is None:
            wanted = f"Latest({self.name})"
            if version is not None:
                wanted = f"Specific({self.name}, {version})"
            raise LookupError(f"Servable not found for request: {wanted}")
        return loaded

    def _on_disk_still(self, version: int) -> bool:
        return (self.base_path / str(version) / "saved_model.pb").exists()

    def _forget(self, version: int) -> None:
        """Serves no more a version whose folder left the disk, at once: standby versions still
        on disk take its place, highest first, up to the policy's count. Nothing is loaded on
        the request's thread; the next poll does the rest."""
        with self._lock:
            served = {v: loaded for v, loaded in self._served.items() if v != version}
            for number in sorted(self._standby, reverse=True):
                if len(served) == self.policy.count:
                    break
                if number not in served and self._on_disk_still(number):
                    served[number] = self._standby[number]
            self._standby = {v: loaded for v, loaded in self._standby.items() if v not in served}
            self._served = served
        log.warning(
            "Model %s version %d left the disk: serving %s", self.name, version, sorted(served)
        )

    def loaded(self) -> dict[int, LoadedVersion]:
        """Every version loaded now: served, or standing by."""
        with self._lock:
            return {**self._standby, **self._served}

    def states(self) -> dict[int, VersionState]:
        """Every version on disk: AVAILABLE (served), LOADING, or END (not served; with the
        error of its latest failed load, if any)."""
        with self._lock:
            states = {}
            for version in self._on_disk:
                error = self._failed.get(version, ((), ""))[1]
                if version in self._served:
                    states[version] = VersionState("AVAILABLE")
                elif version == self._loading:
                    states[version] = VersionState("LOADING")
                else:
                    states[version] = VersionState(
                        "END", f"failed to load: {error}" if error else ""
                    )
            return states

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
            except Exception as error:  # keep polling whatever one scan hit
                log.warning("Polling %s failed: %s", self.base_path, error)
