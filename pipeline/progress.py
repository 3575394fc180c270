"""`make run`'s line per component, read from what the run records in ML Metadata (each
execution's node, state and times) while it runs, so that the lines survive TFX rewording its
log. A component that the run skipped (a false tfx.dsl.Cond) records no execution.

The store is read by a process of its own (`python -m pipeline.progress`): ML Metadata's SQLite
busy handler sleeps 100-300 ms whenever a read meets the run's write, and in a thread of the
run it would hold the interpreter that long (Keras then warns that its callbacks are slow)."""

import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.child_process import start_child

Execution = metadata_store_pb2.Execution
FINISHED = {Execution.COMPLETE, Execution.CACHED, Execution.FAILED, Execution.CANCELED}
PIPELINE_RUN = "pipeline_run"  # TFX's PIPELINE_RUN_CONTEXT_TYPE_NAME, without importing TFX
SKIPPED = "skipped (the model is the last blessed one, and pushed)"
POLL_S = 1.0


def how_it_ended(execution: metadata_store_pb2.Execution) -> str:
    seconds = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000
    if execution.last_known_state == Execution.CACHED:
        return f"reused from cache in {seconds:.1f} s"
    if execution.last_known_state == Execution.COMPLETE:
        return f"done in {seconds:.1f} s"
    if execution.type.endswith(".Resolver"):  # TFX's latest-artifact strategy found none yet
        return f"done in {seconds:.1f} s (nothing to resolve yet)"
    return f"{Execution.State.Name(execution.last_known_state).lower()} after {seconds:.1f} s"


def open_store(metadata_path: Path) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(metadata_path)
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def node_id(store: metadata_store.MetadataStore, execution_id: int) -> str:
    """An execution's node id, from its "node" context ("<pipeline>.<node id>"): components
    of one class (three Resolvers) or renamed by with_id are told apart by it."""
    return next(
        context.name.split(".", 1)[1]
        for context in store.get_contexts_by_execution(execution_id)
        if context.type == "node"
    )


def pipeline_runs(metadata_path: Path) -> set[int]:
    """The ids of the pipeline runs recorded so far (none before the store exists)."""
    if not metadata_path.exists():
        return set()
    try:
        return {c.id for c in open_store(metadata_path).get_contexts_by_type(PIPELINE_RUN)}
    except Exception:  # noqa: BLE001 (a store a killed first run left without types)
        return set()


class ProgressLines:
    """What to print as the store changes: "[k/N] <node> running..." when a node's execution
    appears, and how it ended once it has."""

    def __init__(self, node_ids: list[str], earlier_runs: set[int], emit: Callable[[str], None]):
        self.node_ids, self.earlier_runs, self.emit = node_ids, earlier_runs, emit
        self.started: dict[int, str] = {}  # execution id -> node id
        self.ended: set[int] = set()
        self.done = 0  # nodes ended or skipped

    def update(self, store: metadata_store.MetadataStore) -> None:
        runs = [
            c for c in store.get_contexts_by_type(PIPELINE_RUN) if c.id not in self.earlier_runs
        ]
        if not runs:
            return
        executions = store.get_executions_by_context(max(c.id for c in runs))
        total = len(self.node_ids)
        for execution in sorted(executions, key=lambda e: e.id):
            if execution.id not in self.started:
                node = node_id(store, execution.id)
                self.started[execution.id] = node
                self.emit(f"[{self.done + 1}/{total}] {node} running...")
            if execution.id not in self.ended and execution.last_known_state in FINISHED:
                self.ended.add(execution.id)
                self.done += 1
                node = self.started[execution.id]
                self.emit(f"[{self.done}/{total}] {node} {how_it_ended(execution)}")

    def skipped(self) -> None:
        """After a run that ended well: the nodes it did not execute."""
        for node in self.node_ids:
            if node not in self.started.values():
                self.done += 1
                self.emit(f"[{self.done}/{len(self.node_ids)}] {node} {SKIPPED}")


def watch(metadata_path: Path, node_ids: list[str], earlier_runs: set[int]) -> None:
    """The watching process: polls the store until the run's process says how the run ended
    on standard input ("ok"; anything else, or its end, is a failure), reads it a last time,
    and ends. Ctrl-C is the run's to handle: the run's end ends this too."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lines = ProgressLines(node_ids, earlier_runs, lambda line: print(line, flush=True))
    store, verdict = None, None
    while verdict is None:
        if select.select([sys.stdin], [], [], POLL_S)[0]:
            verdict = sys.stdin.readline().strip()
        for attempt in range(3 if verdict is not None else 1):
            try:
                if store is None and metadata_path.exists():
                    store = open_store(metadata_path)
                if store is not None:
                    lines.update(store)
                break
            except Exception:  # noqa: BLE001 (the store busy or half made: read it again)
                time.sleep(0.2 * attempt)
    if verdict == "ok":
        lines.skipped()


class RunProgress:
    """Around one run: a watching process prints its lines (to this process's standard
    output) until the run ends."""

    def __init__(self, metadata_path: Path, node_ids: list[str]):
        self.metadata_path, self.node_ids = metadata_path, node_ids

    def __enter__(self) -> "RunProgress":
        earlier = ",".join(map(str, sorted(pipeline_runs(self.metadata_path))))
        sys.stdout.flush()
        self.process = start_child(  # ends with the run, even a killed one
            [sys.executable, "-m", "pipeline.progress", str(self.metadata_path), earlier]
            + self.node_ids,
            stdin=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a terminal's Ctrl-C is the run's to handle, not this one's
        )
        return self

    def __exit__(self, error_type, *_) -> None:
        try:
            self.process.communicate("failed\n" if error_type else "ok\n", timeout=30)
        except Exception:  # noqa: BLE001 (lines are not worth a run)
            self.process.kill()


if __name__ == "__main__":
    path, runs, *nodes = sys.argv[1:]
    watch(Path(path), nodes, {int(run) for run in runs.split(",") if run})
