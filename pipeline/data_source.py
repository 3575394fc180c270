"""`DATA=<source>`: which data the pipeline reads, and how ExampleGen should read it.

- `mnist-sample` (default): the 5,000 offline digits, written as TFRecords on first use.
- `mnist`: the full 70,000 digits, downloaded once and verified; MNIST's official 10,000-image
  test set is the eval split.
- a folder of class sub-folders of images (`<root>/<class>/<file>`), hash-split train:eval.
- a folder of MNIST IDX files: `train-*` and `t10k-*` become the train and eval splits; other
  IDX files are hash-split.

Data that keeps arriving goes in span folders, `<DATA>/span-1/`, `<DATA>/span-2/`, ..., each laid
out as above: every run ingests the newest span and trains on the latest TRAIN_SPANS.

Digits are checked against the reviewed schema `pipeline/schema/schema.pbtxt`; class folders
against a schema SchemaGen infers, unless SCHEMA names a reviewed one.
"""

import dataclasses
import re
from pathlib import Path

from components import mnist_download, mnist_sample
from components.idx import is_idx_images
from pipeline import configs

SAMPLE, FULL_MNIST = "mnist-sample", "mnist"


@dataclasses.dataclass(frozen=True)
class DataSource:
    root: Path
    kind: str  # "tfrecords" (raw tf.Examples) or "images" (image folders, IDX files)
    splits: dict[str, str]  # split name -> file pattern; a single split is hash-split
    schema: Path | None = None  # the reviewed schema to import; None: SchemaGen infers one

    @property
    def spans(self) -> tuple[int, ...]:
        """The N of each `span-<N>` folder, in order; empty for data without spans."""
        return tuple(span_folders(self.root))

    @property
    def example_gen_id(self) -> str:
        return "ImportExampleGen" if self.kind == "tfrecords" else "ImageExampleGen"


def _nonempty_folder(root: Path, expected: str) -> None:
    if not root.is_dir():
        raise FileNotFoundError(f"Data folder {root} does not exist: expected {expected}.")
    if not any(root.iterdir()):
        raise FileNotFoundError(f"Data folder {root} is empty: expected {expected}.")


SPAN_FOLDER = re.compile(r"span-(\d+)")


def span_folders(root: Path) -> dict[int, Path]:
    """The `span-<N>` folders in `root`, by N, in order."""
    found = {
        int(m[1]): p for p in root.iterdir() if p.is_dir() and (m := SPAN_FOLDER.fullmatch(p.name))
    }
    return dict(sorted(found.items()))


def latest_span_folder(root: Path) -> tuple[Path, str]:
    """(the folder whose layout decides the splits, the pattern prefix that leads to it): the
    newest `span-<N>` sub-folder and "span-{SPAN}/" when `root` has span folders, else `root`."""
    spans = span_folders(root)
    if not spans:
        return root, ""
    return list(spans.values())[-1], "span-{SPAN}/"


def schema_for(digits: bool) -> Path | None:
    """SCHEMA if set ("infer": none), else the reviewed MNIST schema for digit sources."""
    if configs.SCHEMA == "infer":
        return None
    if configs.SCHEMA:
        schema = Path(configs.SCHEMA).expanduser().resolve()
        if not schema.is_file():
            raise FileNotFoundError(f"SCHEMA={configs.SCHEMA}: no schema file at {schema}.")
        return schema
    return configs.MNIST_SCHEMA if digits else None


def idx_source(root: Path) -> DataSource:
    """Official MNIST file names give the splits; anything else is hash-split."""
    folder, prefix = latest_span_folder(root)
    names = [path.name for path in folder.iterdir() if is_idx_images(path)]
    if any(n.startswith("train-") for n in names) and any(n.startswith("t10k-") for n in names):
        splits = {"train": f"{prefix}train-*", "eval": f"{prefix}t10k-*"}
    else:
        splits = {"all": f"{prefix}*"}
    return DataSource(root, "images", splits, schema_for(digits=True))


def resolve(data: str = configs.DATA) -> DataSource:
    """The source `data` names; fails, before any component runs, when it has nothing to read."""
    if data == SAMPLE:
        root = configs.DATA_ROOT
        if root == configs.DEFAULT_DATA_ROOT and not root.exists():
            mnist_sample.write_sample(root, configs.SAMPLE_SIZE, configs.DATA_SEED)
        _nonempty_folder(root, "TFRecord files of tf.Examples (`make data` writes the sample)")
        _, prefix = latest_span_folder(root)
        return DataSource(root, "tfrecords", {"all": f"{prefix}*"}, schema_for(digits=True))
    if data == FULL_MNIST:
        return idx_source(mnist_download.fetch_mnist(configs.MNIST_MIRROR))
    root = Path(data).expanduser().resolve()
    expected = "class sub-folders of images, or MNIST IDX files (optionally in span-<N>/ folders)"
    _nonempty_folder(root, expected)
    folder, prefix = latest_span_folder(root)
    _nonempty_folder(folder, expected)
    if any(is_idx_images(path) for path in folder.iterdir()):
        return idx_source(root)
    if not any(path.is_dir() for path in folder.iterdir()):
        raise FileNotFoundError(
            f"Data folder {folder} has no class sub-folders (<root>/<class>/<image>) "
            "and no IDX image files."
        )
    return DataSource(root, "images", {"all": f"{prefix}*/*"}, schema_for(digits=False))
