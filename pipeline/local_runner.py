"""Runs the pipeline on this machine with TFX's LocalDagRunner.

Works with the TFX CLI:
    tfx pipeline create --engine local --pipeline_path pipeline/local_runner.py
    tfx run create --engine local --pipeline_name mnist-cnn-pipeline
"""

import logging as std_logging
import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script (directly or by the TFX CLI), this folder comes first on sys.path and
    # `pipeline` would name pipeline.py instead of this package: put the project root first.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from absl import logging  # noqa: E402
from tfx import v1 as tfx  # noqa: E402

from pipeline import configs, data_source, pipeline  # noqa: E402


def create_local_pipeline(
    source: data_source.DataSource | None = None, ingest_span: int | None = None
) -> tfx.dsl.Pipeline:
    """The pipeline with this machine's paths, metadata store and Beam settings, reading
    `source` (default: the data that DATA names). With `ingest_span`, only that span is read
    and the pipeline stops after the validation gate."""
    source = source or data_source.resolve()
    configs.METADATA_PATH.parent.mkdir(parents=True, exist_ok=True)
    return pipeline.create_pipeline(
        pipeline_root=str(configs.PIPELINE_ROOT),
        example_gen_args=configs.example_gen_args(
            str(source.root), source.kind, source.splits, span=ingest_span
        ),
        validate_only=ingest_span is not None,
        schema_file=str(source.schema) if source.schema else None,
        serving_model_dir=str(configs.SERVING_MODEL_DIR),
        beam_pipeline_args=configs.beam_pipeline_args(),
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(configs.METADATA_PATH)
        ),
        **configs.pipeline_args(),
    )


def run_pipeline(local_pipeline: tfx.dsl.Pipeline) -> None:
    tfx.orchestration.LocalDagRunner().run(local_pipeline)


def exit_now(status: int) -> None:
    """Ends the process once output is flushed, skipping interpreter shutdown: there, objects
    that TensorFlow functions left in Beam's and TFDV's caches finalize after TensorFlow's
    module state is gone and print "Exception ignored in AtomicFunction.__del__" tracebacks."""
    logging.flush()
    std_logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    run_pipeline(create_local_pipeline())
