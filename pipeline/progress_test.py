"""Progress lines from a real ML Metadata store (SQLite) holding a run's executions as TFX
records them: a context per pipeline run and per node, an execution per node run."""

import subprocess
import sys

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.local_runner import sqlite_metadata
from pipeline.progress import PIPELINE_RUN, SKIPPED, ProgressLines, pipeline_runs

Execution = metadata_store_pb2.Execution


def record_run(store, run_name: str, nodes: dict[str, tuple[str, int]]) -> None:
    """A pipeline run whose `nodes` ({node id: (execution type, state)}) executed, in order."""
    context_type = {
        name: store.put_context_type(metadata_store_pb2.ContextType(name=name))
        for name in (PIPELINE_RUN, "node")
    }
    [run] = store.put_contexts(
        [metadata_store_pb2.Context(type_id=context_type[PIPELINE_RUN], name=run_name)]
    )
    for node, (type_name, state) in nodes.items():
        execution_type = store.put_execution_type(metadata_store_pb2.ExecutionType(name=type_name))
        [execution] = store.put_executions(
            [Execution(type_id=execution_type, last_known_state=state)]
        )
        [node_context] = store.put_contexts(
            [metadata_store_pb2.Context(type_id=context_type["node"], name=f"mnist.{node}")]
        )
        store.put_attributions_and_associations(
            [],
            [
                metadata_store_pb2.Association(context_id=context, execution_id=execution)
                for context in (run, node_context)
            ],
        )


def test_a_line_as_each_node_starts_and_ends_and_the_skipped_ones_after(tmp_path):
    path = tmp_path / "metadata.sqlite"
    store = metadata_store.MetadataStore(sqlite_metadata(path))
    record_run(store, "before", {"Old": ("tfx.Old", Execution.COMPLETE)})
    earlier = pipeline_runs(path)
    lines: list[str] = []
    progress = ProgressLines(
        ["ImportExampleGen", "latest_push_resolver", "Trainer", "Evaluator", "Pusher"],
        earlier,
        lines.append,
    )
    record_run(
        store,
        "now",
        {
            "ImportExampleGen": ("tfx.ImportExampleGen", Execution.CACHED),
            "latest_push_resolver": ("tfx.dsl.Resolver", Execution.FAILED),
            "Trainer": ("tfx.Trainer", Execution.RUNNING),
        },
    )
    progress.update(store)
    progress.update(store)  # nothing new: nothing printed twice
    assert [line.split(" in ")[0] for line in lines] == [
        "[1/5] ImportExampleGen running...",
        "[1/5] ImportExampleGen reused from cache",
        "[2/5] latest_push_resolver running...",
        "[2/5] latest_push_resolver done",
        "[3/5] Trainer running...",
    ]
    assert lines[3].endswith("(nothing to resolve yet)")
    [trainer] = [e for e in store.get_executions() if e.last_known_state == Execution.RUNNING]
    trainer.last_known_state = Execution.COMPLETE
    store.put_executions([trainer])
    progress.update(store)
    progress.skipped()
    assert [line.split(" in ")[0] for line in lines[5:]] == [
        "[3/5] Trainer done",
        f"[4/5] Evaluator {SKIPPED}",
        f"[5/5] Pusher {SKIPPED}",
    ]


def test_the_watching_process_reports_a_run_and_ends_when_told(tmp_path):
    path = tmp_path / "metadata.sqlite"
    store = metadata_store.MetadataStore(sqlite_metadata(path))
    record_run(store, "now", {"Trainer": ("tfx.Trainer", Execution.COMPLETE)})
    watcher = subprocess.run(
        [sys.executable, "-m", "pipeline.progress", str(path), "", "Trainer", "Pusher"],
        input="ok\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert watcher.returncode == 0, watcher.stderr
    assert watcher.stdout.splitlines()[-1] == f"[2/2] Pusher {SKIPPED}"
    assert watcher.stdout.startswith("[1/2] Trainer running...\n[1/2] Trainer done in ")
