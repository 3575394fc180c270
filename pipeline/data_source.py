"""`DATA=<source>`: which data the pipeline reads, and how ExampleGen should read it.

- `mnist-sample` (default): the 5,000 offline digits, written as TFRecords on first use.
- `mnist`: the full 70,000 digits, downloaded once and verified; MNIST's official 10,000-image
  test set is the test split.
- a folder of class sub-folders of images (`<root>/<class>/<file>`), hash-split; or one with
  `train/`, `validation/` (or `val/`) and `test/` folders of class sub-folders, kept.
- a folder of MNIST IDX files: `train-*` and `t10k-*` become the train and test splits; other
  IDX files are hash-split.

Every source ends in three splits, train, validation and test (components/splits.py): a
validation split the data lacks is carved out of its train split.

`TEST_DATA=<IDX folder | class-folder tree | TFRecord files>` is an external labelled test set:
it replaces the data's own test split, and the same ExampleGen, schema and gate check it.

Data that keeps arriving goes in span folders, `<DATA>/span-1/`, `<DATA>/span-2/`, ..., each laid
out as above: every run ingests the newest span and trains on the latest TRAIN_SPANS.

Digits are checked against the reviewed schema `pipeline/schema/schema.pbtxt`; class folders
against a schema SchemaGen infers, unless SCHEMA names a reviewed one.
"""

import dataclasses
import re
from collections import Counter
from pathlib import Path

import tensorflow as tf

from components.data import download, sample
from components.data.codecs import is_idx_images, read_idx
from components.image_example_gen import IMAGE_EXAMPLE_GEN_ID, is_tfrecords, labels_file_for
from components.spans import IMPORT_EXAMPLE_GEN_ID
from components.splits import TEST, TRAIN, VALIDATION
from pipeline.settings import MNIST_SCHEMA, Settings
from trainer.features import CLASS_NAME_KEY, IMAGE_SUFFIXES, LABEL_KEY

SAMPLE, FULL_MNIST = "mnist-sample", "mnist"
VALIDATION_FOLDERS = ("validation", "val")


class DataSourceError(ValueError):
    """DATA or TEST_DATA names data the pipeline cannot use; raised before any component runs."""


@dataclasses.dataclass(frozen=True)
class Ingest:
    """What ExampleGen reads, on any runner: `splits` maps split names to file patterns under
    `data_root` ({SPAN} picks the newest span, or `span`); a single one (default: every file) is
    hash-split into train, validation and test (components/splits.py). `kind` is "tfrecords"
    (raw tf.Examples) or "images" (image folders, IDX files)."""

    data_root: str
    kind: str = "tfrecords"
    splits: dict[str, str] | None = None
    span: int | None = None


@dataclasses.dataclass(frozen=True)
class DataSource(Ingest):
    """DATA resolved on this machine: what ExampleGen reads, and the reviewed schema to import
    (None: SchemaGen infers one)."""

    schema: Path | None = None

    @property
    def root(self) -> Path:
        return Path(self.data_root)

    @property
    def spans(self) -> tuple[int, ...]:
        """The N of each `span-<N>` folder, in order; empty for data without spans."""
        return tuple(span_folders(self.root))

    @property
    def example_gen_id(self) -> str:
        return IMPORT_EXAMPLE_GEN_ID if self.kind == "tfrecords" else IMAGE_EXAMPLE_GEN_ID


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


def schema_for(setting: str, digits: bool) -> Path | None:
    """The SCHEMA `setting` if set ("infer": none), else the reviewed MNIST schema for digit
    sources."""
    if setting == "infer":
        return None
    if setting:
        schema = Path(setting).expanduser().resolve()
        if not schema.is_file():
            raise FileNotFoundError(f"SCHEMA={setting}: no schema file at {schema}.")
        return schema
    return MNIST_SCHEMA if digits else None


def idx_source(root: Path, schema: str) -> DataSource:
    """Official MNIST file names give the splits; anything else is hash-split."""
    folder, prefix = latest_span_folder(root)
    names = [path.name for path in folder.iterdir() if is_idx_images(path)]
    if any(n.startswith("train-") for n in names) and any(n.startswith("t10k-") for n in names):
        splits = {TRAIN: f"{prefix}train-*", TEST: f"{prefix}t10k-*"}
    else:
        splits = {"all": f"{prefix}*"}
    return DataSource(str(root), "images", splits, schema=schema_for(schema, digits=True))


def class_folder_splits(folder: Path, prefix: str) -> dict[str, str]:
    """`train/`, `validation/` (or `val/`) and `test/` folders of class folders keep their
    splits (validation carved out of train when missing); plain class folders are hash-split."""
    names = {path.name for path in folder.iterdir() if path.is_dir()}
    if not {TRAIN, TEST} <= names:
        return {"all": f"{prefix}*/*"}
    splits = {TRAIN: f"{prefix}{TRAIN}/*/*", TEST: f"{prefix}{TEST}/*/*"}
    for name in VALIDATION_FOLDERS:
        if name in names:
            splits[VALIDATION] = f"{prefix}{name}/*/*"
            break
    return splits


def _data_source(settings: Settings) -> DataSource:
    data = settings.data
    if data == SAMPLE:
        root = settings.sample_root
        # Written when its file is missing, even where a run killed while writing it left the
        # folder with only a partial file (sample.write_sample renames it into place).
        if root == settings.default_sample_root and not (root / sample.SAMPLE_FILE_NAME).exists():
            sample.write_sample(root, settings.sample_size, settings.data_seed)
        _nonempty_folder(root, "TFRecord files of tf.Examples (`make data` writes the sample)")
        _, prefix = latest_span_folder(root)
        schema = schema_for(settings.schema, digits=True)
        return DataSource(str(root), "tfrecords", {"all": f"{prefix}*"}, schema=schema)
    if data == FULL_MNIST:
        return idx_source(download.fetch_mnist(settings.mnist_mirror), settings.schema)
    root = Path(data).expanduser().resolve()
    expected = "class sub-folders of images, or MNIST IDX files (optionally in span-<N>/ folders)"
    _nonempty_folder(root, expected)
    folder, prefix = latest_span_folder(root)
    _nonempty_folder(folder, expected)
    if any(is_idx_images(path) for path in folder.iterdir()):
        return idx_source(root, settings.schema)
    if not any(path.is_dir() for path in folder.iterdir()):
        raise FileNotFoundError(
            f"Data folder {folder} has no class sub-folders (<root>/<class>/<image>) "
            "and no IDX image files."
        )
    schema = schema_for(settings.schema, digits=False)
    return DataSource(str(root), "images", class_folder_splits(folder, prefix), schema=schema)


def resolve(settings: Settings) -> DataSource:
    """The source DATA names, with TEST_DATA (if any) as its test split; fails, before any
    component runs, when either has nothing to read or the test set names classes the training
    data lacks."""
    source = _data_source(settings)
    check_training_data(source, settings.gates.min_class_examples, settings.train_spans)
    test_data = settings.test_data
    if not test_data:
        return source
    if source.spans:
        raise DataSourceError(
            f"TEST_DATA={test_data} with DATA in span folders ({source.root}): put the test "
            "set in each span's own test split instead (e.g. span-<N>/t10k-* or span-<N>/test/)."
        )
    test_pattern, test_classes = external_test_set(Path(test_data).expanduser().resolve())
    missing = sorted(test_classes - training_classes(source))
    if missing:
        raise DataSourceError(
            f"TEST_DATA={test_data} names classes the training data ({source.root}) lacks: "
            + ", ".join(missing)
        )
    splits = {
        (TRAIN if name == "all" else name): pattern
        for name, pattern in source.splits.items()
        if name != TEST
    }
    return dataclasses.replace(source, kind="images", splits={**splits, TEST: test_pattern})


def _unreadable(path: Path, error: Exception | str) -> DataSourceError:
    """Names the file; it belongs to TEST_DATA or, when its classes are compared, to DATA."""
    return DataSourceError(f"cannot read {path}: {error}")


# (label id, class name) -> number of examples
ClassCounts = Counter[tuple[int, str]]


def idx_counts(images_files: list[Path]) -> ClassCounts:
    """The labels of IDX image files, from their labels files, once both are checked whole
    (a header that announces more than the file holds, counts that differ)."""
    counts: ClassCounts = Counter()
    for images in images_files:
        labels = Path(labels_file_for(str(images)))
        if not labels.exists():
            raise DataSourceError(f"{images} has no labels file {labels}")
        arrays = []
        for path in (images, labels):
            try:
                arrays.append(read_idx(path))
            except ValueError as error:  # names the file
                raise DataSourceError(str(error)) from error
            except (OSError, EOFError) as error:  # EOFError: a gzip cut short
                raise _unreadable(path, error) from error
        if len(arrays[0]) != len(arrays[1]):
            raise DataSourceError(
                f"{images} holds {len(arrays[0])} images but {labels} {len(arrays[1])} labels"
            )
        counts.update((int(label), str(label)) for label in arrays[1].tolist())
    return counts


def idx_classes(folder: Path) -> set[str]:
    """The labels of every IDX image file's labels file in `folder`, as class names."""
    return {name for _, name in idx_counts(sorted(p for p in folder.iterdir() if is_idx_images(p)))}


def tfrecord_counts(files: list[Path]) -> ClassCounts:
    """The labels and class names of raw tf.Examples in TFRecord files, streamed; a file cut
    short or corrupt is named with the byte offset TensorFlow's reader reports."""
    spec = {
        CLASS_NAME_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
        LABEL_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    }
    counts: ClassCounts = Counter()
    for path in files:
        compression = "GZIP" if path.suffix == ".gz" else ""
        records = tf.data.TFRecordDataset(str(path), compression_type=compression)
        try:
            for batch in records.batch(1024):
                parsed = tf.io.parse_example(batch, spec)
                names = [name.decode() for name in parsed[CLASS_NAME_KEY].numpy()]
                labels = parsed[LABEL_KEY].numpy().tolist()
                counts.update(
                    (label, name or str(label)) for label, name in zip(labels, names, strict=True)
                )
        except tf.errors.OpError as error:
            problem = record_problem(error.message, compressed=bool(compression))
            raise _unreadable(path, problem) from error
    return counts


def record_problem(message: str, compressed: bool) -> str:
    """TensorFlow's reader error without its op names: "truncated record at byte 1234"."""
    found = re.search(r"(truncated|corrupted) record at (\d+)", message)
    if not found:
        return re.sub(r"\{\{.*?\}\}|\[Op:.*", "", message, flags=re.DOTALL).strip()[:300]
    where = " of the uncompressed stream" if compressed else ""
    return f"{found[1]} record at byte {found[2]}{where}"


def tfrecord_classes(files: list[Path]) -> set[str]:
    """The class names (else the labels) of raw tf.Examples in TFRecord files."""
    return {name for _, name in tfrecord_counts(files)}


def class_folder_counts(folder: Path, splits: dict[str, str]) -> ClassCounts:
    """Training images per class folder (train and validation folders when the data has its
    own splits); label ids are the sorted class names of every split, as ExampleGen gives."""
    roots = [folder]
    if TRAIN in splits:
        roots = [folder / name for name in (TRAIN, *VALIDATION_FOLDERS, TEST)]
    class_folders = [c for root in roots if root.is_dir() for c in root.iterdir() if c.is_dir()]
    ids = {name: i for i, name in enumerate(sorted({c.name for c in class_folders}))}
    counts: ClassCounts = Counter({(i, name): 0 for name, i in ids.items()})
    for class_folder in class_folders:
        if class_folder.parent.name == TEST and TRAIN in splits:
            continue
        images = sum(1 for f in class_folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        counts[(ids[class_folder.name], class_folder.name)] += images
    return counts


def check_training_data(source: DataSource, minimum: int, train_spans: int = 1) -> None:
    """Refuses, before any component runs, training data that would fail later: unreadable
    or inconsistent files, label ids with gaps (the Trainer needs 0 .. N-1), and classes with
    fewer than `minimum` examples, in what the Trainer reads: the newest `train_spans` spans
    together (a span of corrections may hold a few classes only)."""
    folders = list(span_folders(source.root).values())[-train_spans:] or [source.root]
    counts: ClassCounts = Counter()
    for folder in folders:
        counts.update(training_counts(source, folder))  # keeps classes counted 0, unlike +=
    labels = sorted({label for label, _ in counts if label >= 0})
    where = folders[0]
    if len(folders) > 1:
        where = f"{source.root} ({folders[0].name} to {folders[-1].name})"
    empty = sorted(name for (_, name), count in counts.items() if count == 0)
    if empty:  # class folders only: other sources count what they hold
        raise DataSourceError(
            f"Class folder{'s' if len(empty) > 1 else ''} {', '.join(empty)} in {where} "
            f"hold{'' if len(empty) > 1 else 's'} no training images "
            f"({', '.join(IMAGE_SUFFIXES)}): add images or remove the folder; every class "
            "folder is a class the model must learn"
        )
    gaps = sorted(set(range(labels[-1] + 1)) - set(labels)) if labels else []
    if gaps:
        raise DataSourceError(
            f"{where}: no training example has label {', '.join(map(str, gaps))}; label ids "
            f"must run 0 .. {labels[-1]} without gaps"
        )
    few = sorted((name, count) for (_, name), count in counts.items() if count < minimum)
    if few:
        listed = ", ".join(f"{name!r} has {count}" for name, count in few[:10])
        raise DataSourceError(
            f"{where}: too few training examples ({listed}); each class needs at least "
            f"{minimum} (MIN_CLASS_EXAMPLES)"
        )


def training_counts(source: DataSource, folder: Path) -> ClassCounts:
    """The training examples per class in one folder laid out as `source` says."""
    if source.kind == "tfrecords":
        files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
        counts = tfrecord_counts(sorted(files))
    elif all(pattern.endswith("*/*") for pattern in source.splits.values()):
        counts = class_folder_counts(folder, source.splits)
    else:
        official = TRAIN in source.splits
        counts = idx_counts(
            sorted(
                p
                for p in folder.iterdir()
                if is_idx_images(p) and (not official or p.name.startswith("train-"))
            )
        )
    return counts


def external_test_set(path: Path) -> tuple[str, set[str]]:
    """(the absolute file pattern ExampleGen reads, the class names) of a TEST_DATA set."""
    if path.is_file() and is_tfrecords(str(path)):
        return str(path), tfrecord_classes([path])
    expected = "IDX files, class sub-folders of images, or TFRecord files (*tfrecord*)"
    if not path.exists():
        raise DataSourceError(f"TEST_DATA: {path} does not exist: expected {expected}.")
    if not path.is_dir() or not any(path.iterdir()):
        raise DataSourceError(f"TEST_DATA: {path} is empty: expected {expected}.")
    files = sorted(path.iterdir())
    if any(is_idx_images(p) for p in files):
        return f"{path}/*", idx_classes(path)
    classes = {
        p.name
        for p in files
        if p.is_dir() and any(f.suffix.lower() in IMAGE_SUFFIXES for f in p.iterdir())
    }
    if classes:
        return f"{path}/*/*", classes
    tfrecords = [p for p in files if p.is_file() and is_tfrecords(p.name)]
    if tfrecords:
        return f"{path}/*tfrecord*", tfrecord_classes(tfrecords)
    raise DataSourceError(f"TEST_DATA: {path} holds no {expected}.")


def training_classes(source: DataSource) -> set[str]:
    """The class names of the training data (its newest span): class folder names, IDX labels,
    or the class names recorded in TFRecords."""
    folder, _ = latest_span_folder(source.root)
    if all(pattern.endswith("*/*") for pattern in source.splits.values()):
        roots = [folder / name for name in (TRAIN, *VALIDATION_FOLDERS) if (folder / name).is_dir()]
        return {p.name for root in roots or [folder] for p in root.iterdir() if p.is_dir()}
    if source.kind == "images":
        return idx_classes(folder)
    return tfrecord_classes(sorted(p for p in folder.iterdir() if p.is_file()))


def main() -> None:
    """`make data`: (re)writes the offline sample, SAMPLE_SIZE digits shuffled by DATA_SEED."""
    settings = Settings.from_env()
    sample.write_sample(settings.sample_root, settings.sample_size, settings.data_seed)


if __name__ == "__main__":
    main()
