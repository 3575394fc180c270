"""Files the project writes outside TFX's artifacts (the sample, downloads, the schema, the run
report, Kubeflow's local state), replaced in one step: a reader, or the next run after a kill,
finds the old file or the new one, never a part."""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replaced_atomically(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed onto `path` when the block ends
    without an error, removed otherwise."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_atomically(path: Path, data: str | bytes) -> None:
    with replaced_atomically(path) as partial:
        partial.write_bytes(data.encode() if isinstance(data, str) else data)
