"""Free space, checked before a run starts: a disk that fills up mid-run fails in whichever
component writes next, with a long traceback (ML Metadata's SQLite "database or disk is full",
a Trainer's checkpoint), after minutes of work.

What a run needs is estimated from what the last run wrote: the newest output of each
component (TFX keeps each in `<pipeline root>/<component>/<output>/<execution id>/`) and the
newest served version. Before any run, from the data: ExampleGen's and Transform's outputs
scale with it (about 1.8 MB for the 1.7 MB sample), and the model is written three times (the
Trainer's, the Pusher's record, the served copy; 5 MB each today)."""

import os
import shutil
from pathlib import Path

from pipeline.data_source import DataSource, latest_span_folder
from pipeline.settings import Settings

MARGIN = 1.5  # a new span may be larger, the model may grow
DATA_FACTOR = 4  # bytes written per byte of data, before any model
MODEL_BYTES = 10 * 2**20  # per copy of the model, with no run to measure


class NotEnoughSpaceError(OSError):
    """The disk under OUTPUT_DIR has less free space than the run needs."""


def folder_bytes(folder: Path) -> int:
    """The size of the files under `folder` (0 when it does not exist)."""
    return sum(
        (Path(root) / name).stat().st_size
        for root, _, names in os.walk(folder)
        for name in names
        if not (Path(root) / name).is_symlink()
    )


def newest(folder: Path) -> Path | None:
    """The sub-folder with the highest number (an execution id, a version), if any."""
    numbered = [p for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    return max(numbered, key=lambda p: int(p.name), default=None)


def last_run_bytes(settings: Settings) -> tuple[int, int] | None:
    """(bytes of the newest output of every component, of the newest served version), or None
    before the first run."""
    outputs = [newest(key) for key in settings.pipeline_root.glob("*/*")]
    written = sum(folder_bytes(path) for path in outputs if path)
    if not written:
        return None
    served = newest(settings.serving_model_dir)
    return written, folder_bytes(served) if served else 0


def needed_bytes(settings: Settings, source: DataSource) -> tuple[int, str]:
    """(the bytes the run is expected to write, how that was estimated)."""
    data, _ = latest_span_folder(source.root)
    from_data = DATA_FACTOR * folder_bytes(data) + 3 * MODEL_BYTES
    last = last_run_bytes(settings)
    if last is None or sum(last) < from_data:
        return int(MARGIN * from_data), f"{from_data / 2**20:.0f} MB from the data in {data}"
    return int(MARGIN * sum(last)), f"the last run wrote {sum(last) / 2**20:.0f} MB"


def existing_ancestor(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def check_free_space(settings: Settings, source: DataSource) -> None:
    """Raises NotEnoughSpaceError naming the folder, the space needed and the space free."""
    needed, basis = needed_bytes(settings, source)
    folder = existing_ancestor(settings.output_dir)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise NotEnoughSpaceError(
            f"not enough free space for a run in {folder}: about {needed / 2**20:.0f} MB "
            f"needed ({basis}, and half again), {free / 2**20:.1f} MB free. Free some space "
            "or set OUTPUT_DIR to a folder on another disk"
        )
