"""`make span-from-requests`: the served pictures that people corrected ("that was a 7",
serving/corrections.py) become the next span of DATA, laid out as the newest span (TFRecords of
the raw format: the picture's bytes, the label, the class name; or a folder per class), so that
the next `make run` ingests them through the same schema, validation gate and drift check as
any span, and trains on them with the spans before (TRAIN_SPANS).

The span is written as `span-<N>.partial/` and renamed whole (a killed write leaves no span);
the corrections it took are then moved beside the request log as `corrections-span-<N>.jsonl`,
so each goes into one span only.
"""

import os
import shutil
import sys
from pathlib import Path

import tensorflow as tf

from components.data.codecs import is_idx_images
from components.data.sample import make_example
from components.splits import TEST, TRAIN
from pipeline.data_source import DataSourceError, span_folders
from pipeline.local_runner import run_cli
from pipeline.settings import Settings
from serving.corrections import CORRECTIONS_FILE, Correction, read_corrections
from serving.limits import image_header

SPAN_FILE = "corrections.tfrecord"


def write_span(data_root: Path, corrections: list[Correction]) -> Path:
    """Writes the corrections as the span after the newest in `data_root`, laid out as that one
    (TFRecords, or a folder per class); returns its folder."""
    spans = span_folders(data_root) if data_root.is_dir() else {}
    if not spans:
        raise DataSourceError(
            f"DATA={data_root} is not laid out in span folders (<DATA>/span-<N>/): move the "
            "data into span-1/ first, so that corrections become span-2"
        )
    newest = spans[max(spans)]
    entries = list(newest.iterdir())
    names = {path.name for path in entries if path.is_dir()}
    if any(is_idx_images(path) for path in entries) or {TRAIN, TEST} <= names:
        raise DataSourceError(
            f"{newest} holds IDX files or split folders: corrections are written as TFRecords "
            "or as a folder per class, the layouts a span of corrections can keep"
        )
    span = data_root / f"span-{max(spans) + 1}"
    partial = span.with_name(span.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # a killed write's
    partial.mkdir()
    if names:
        for name in names:  # every class, so that label ids (sorted folder names) stay the same
            (partial / name).mkdir()
        for correction in corrections:
            image_format, _ = image_header(correction.image)
            file_name = f"{correction.request_id}-{correction.index}.{image_format}"
            (partial / correction.class_name).mkdir(exist_ok=True)  # a class new to the data
            (partial / correction.class_name / file_name).write_bytes(correction.image)
    else:
        with tf.io.TFRecordWriter(str(partial / SPAN_FILE)) as writer:
            for correction in corrections:
                example = make_example(correction.image, correction.label, correction.class_name)
                writer.write(example.SerializeToString())
    os.rename(partial, span)
    return span


def main() -> int:
    settings = Settings.from_env()
    corrections_path = settings.request_log_dir / CORRECTIONS_FILE
    corrections, bad = read_corrections(corrections_path)
    if bad:
        print(f"Skipped {bad} unreadable lines of {corrections_path}", file=sys.stderr)
    if not corrections:
        raise FileNotFoundError(
            f"No corrections in {corrections_path}: the page's 'Wrong? It was:' buttons and "
            "`python -m serving.client correct` write them while `make serve` runs"
        )
    span = write_span(Path(settings.data).expanduser().resolve(), corrections)
    corrections_path.rename(corrections_path.with_name(f"corrections-{span.name}.jsonl"))
    print(f"Wrote {len(corrections)} corrected pictures as {span}; `make run` ingests it next")
    return 0


if __name__ == "__main__":
    run_cli(main)
