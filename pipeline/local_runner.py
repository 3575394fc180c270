"""Runs the pipeline on this machine with TFX's LocalDagRunner.

Works with the TFX CLI:
    tfx pipeline create --engine local --pipeline_path pipeline/local_runner.py
    tfx run create --engine local --pipeline_name mnist-cnn-pipeline
"""

import dataclasses
import logging as std_logging
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

if __name__ == "__main__":
    # Run as a script (directly or by the TFX CLI), this folder comes first on sys.path and
    # `pipeline` would name pipeline.py instead of this package: put the project root first.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from absl import logging
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.dsl.compiler.constants import PIPELINE_RUN_CONTEXT_TYPE_NAME

from components.child_process import running
from components.data.download import DownloadError
from components.image_example_gen import BadImagesError
from components.validation_gate import DataValidationError
from pipeline import data_source, image_profile, pipeline
from pipeline.disk_space import NotEnoughSpaceError, existing_ancestor
from pipeline.run_lock import RunInProgressError, exclusive_use
from pipeline.settings import Settings, SettingsError
from trainer.compat import exit_now
from trainer.features import DIGITS_PROFILE, ImageProfile


def sqlite_metadata(path: Path) -> metadata_store_pb2.ConnectionConfig:
    """ML Metadata in a SQLite file (its folder created when missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return tfx.orchestration.metadata.sqlite_metadata_connection_config(str(path))


def local_choices(settings: Settings, metadata_path: Path) -> pipeline.RunnerChoices:
    """Beam's DirectRunner and ML Metadata in SQLite."""
    return pipeline.RunnerChoices(
        beam_pipeline_args=settings.beam_pipeline_args(),
        metadata_connection_config=sqlite_metadata(metadata_path),
        model_server=settings.model_server,
    )


def create_local_pipeline(
    settings: Settings,
    source: data_source.DataSource,
    profile: ImageProfile = DIGITS_PROFILE,
    ingest_span: int | None = None,
) -> tfx.dsl.Pipeline:
    """The pipeline with this machine's paths, metadata store and Beam settings, reading
    `source` with the image `profile` (pipeline/image_profile.py decides it). With
    `ingest_span`, only that span is read and validated."""
    schema_file = str(source.schema) if source.schema else None
    runner = local_choices(settings, settings.metadata_path)
    if ingest_span is not None:
        return pipeline.create_validation_pipeline(
            settings.pipeline_name,
            str(settings.pipeline_root),
            dataclasses.replace(source, span=ingest_span),
            schema_file,
            settings.gates,
            runner,
            settings.enable_cache,
        )
    return pipeline.create_pipeline(
        pipeline_name=settings.pipeline_name,
        pipeline_root=str(settings.pipeline_root),
        # The newest span as the run starts: one that appears meanwhile is the next run's.
        ingest=dataclasses.replace(source, span=source.spans[-1] if source.spans else None),
        schema_file=schema_file,
        training=settings.training,
        gates=settings.gates,
        serving_model_dir=str(settings.serving_model_dir),
        runner=runner,
        profile=profile,
        train_spans=settings.train_spans,
        warm_start=settings.warm_start,
        enable_cache=settings.enable_cache,
    )


def run_ids(connection: metadata_store_pb2.ConnectionConfig) -> set[str]:
    """The pipeline runs recorded in a metadata store (TFX's "pipeline_run" contexts)."""
    store = metadata_store.MetadataStore(connection)
    return {context.name for context in store.get_contexts_by_type(PIPELINE_RUN_CONTEXT_TYPE_NAME)}


def run_pipeline(local_pipeline: tfx.dsl.Pipeline) -> str | None:
    """Runs the pipeline; returns its run id, so that what is reported is this run's own and
    never another's that the store holds (LocalDagRunner names the run but does not say).
    None where nothing ran: the TFX CLI's `pipeline create` replaces the runner to record the
    pipeline."""
    before = run_ids(local_pipeline.metadata_connection_config)
    tfx.orchestration.LocalDagRunner().run(local_pipeline)
    new = run_ids(local_pipeline.metadata_connection_config) - before
    return new.pop() if new else None


# What a command-line entry point's errors mean: 2, unusable settings or data source (found
# before any component runs); 3, data that failed validation; 4, OUTPUT_DIR in use by another
# run; 5, not enough free space under OUTPUT_DIR; 130, interrupted (Ctrl-C), as shells report
# SIGINT.
EXIT_CODES = {
    SettingsError: 2,
    FileNotFoundError: 2,
    DownloadError: 2,
    data_source.DataSourceError: 2,
    DataValidationError: 3,
    BadImagesError: 3,
    RunInProgressError: 4,
    NotEnoughSpaceError: 5,
}
INTERRUPTED = 130
FAILED = 1  # anything else: one line here, the traceback in the run's log


TEMP_PREFIX = "mnist-tfx-run-"  # then the run's process id


def remove_temp_dirs_of_ended_runs() -> None:
    """Removes the temporary folders that killed runs left (a kill skips every clean-up)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*-*"):
        pid = folder.name[len(TEMP_PREFIX) :].split("-")[0]
        if pid.isdigit() and not running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def run_cli(main: Callable[[], int], exclusive: bool = True) -> None:
    """Runs an entry point; a known error is one line on stderr and its exit code. `exclusive`
    entry points hold OUTPUT_DIR while they run (pipeline/run_lock.py). Ctrl-C ends the run at
    once (exit 130): Python's KeyboardInterrupt did not (a run went on through the Trainer
    and the Pusher after it), so SIGINT exits here, as a kill would, and ML Metadata records
    the component as unfinished for the next run. The run's temporary files (its subprocesses'
    too) go to a folder of its own, removed at the end: AutoGraph's generated sources are
    deleted by exit handlers, which exit_now skips, and Beam and TFX leave folders behind (about
    45 entries in the temp folder per run otherwise)."""
    remove_temp_dirs_of_ended_runs()
    temp_dir = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-")
    tempfile.tempdir = os.environ["TMPDIR"] = temp_dir

    def interrupted(signum, frame) -> None:
        print("\ninterrupted: stopped; the next run starts afresh", file=sys.stderr)
        shutil.rmtree(temp_dir, ignore_errors=True)
        exit_now(INTERRUPTED)

    signal.signal(signal.SIGINT, interrupted)
    try:
        with exclusive_use(Settings.from_env().output_dir) if exclusive else nullcontext():
            status = main()
    except tuple(EXIT_CODES) as error:
        print(f"\nerror: {error}", file=sys.stderr)
        status = next(code for kind, code in EXIT_CODES.items() if isinstance(error, kind))
    except Exception as error:
        log_file = run_log_file()
        if log_file is None:  # failed before the log was opened: the traceback is all there is
            raise
        std_logging.getLogger(__name__).info("The run failed:", exc_info=True)  # the log only
        print(f"\nerror: {one_line(error)} (traceback in {log_file})", file=sys.stderr)
        status = FAILED
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    exit_now(status)


def run_log_file() -> str | None:
    """The file the run logs to (pipeline/run.py opens it), if open."""
    handlers = std_logging.getLogger().handlers
    return next((h.baseFilename for h in handlers if isinstance(h, std_logging.FileHandler)), None)


NO_SPACE = ("No space left on device", "database or disk is full")  # the OS's, SQLite's


def one_line(error: Exception) -> str:
    """What failed, for the console: the error's type and the first line of its message; a
    full disk named as such, with the free space under OUTPUT_DIR."""
    text = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
    if any(phrase in str(error) for phrase in NO_SPACE):
        # An OSError's file, else the path TensorFlow's file errors begin with ("<path>; No
        # space left on device"), else OUTPUT_DIR (SQLite's errors name no file).
        paths = [word for word in re.split(r"[;:'\"\s]", text) if word.startswith("/")]
        filename = getattr(error, "filename", None) or next(iter(paths), None)
        folder = existing_ancestor(
            Path(filename).parent if filename else Settings.from_env().output_dir
        )
        free = shutil.disk_usage(folder).free
        return f"the disk of {folder} is full ({free / 2**20:.1f} MB free): {text}"
    return f"{type(error).__name__}: {text}"


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    settings = Settings.from_env()
    source = data_source.resolve(settings)
    decision = image_profile.decide(source, settings)
    image_profile.check_backbone(settings, decision)
    run_pipeline(create_local_pipeline(settings, source, decision.profile))
