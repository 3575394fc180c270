"""`DATA=<source>`: which data the pipeline reads, and how ExampleGen should read it.

- `mnist-sample` (default): the 5,000 offline digits, written as TFRecords on first use.
- `mnist`: the full 70,000 digits, downloaded once and verified; MNIST's official 10,000-image
  test set is the eval split.
- a folder of class sub-folders of images (`<root>/<class>/<file>`), hash-split train:eval.
- a folder of MNIST IDX files: `train-*` and `t10k-*` become the train and eval splits; other
  IDX files are hash-split.
"""

import dataclasses
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

    @property
    def example_gen_id(self) -> str:
        return "ImportExampleGen" if self.kind == "tfrecords" else "ImageExampleGen"


def _nonempty_folder(root: Path, expected: str) -> None:
    if not root.is_dir():
        raise FileNotFoundError(f"Data folder {root} does not exist: expected {expected}.")
    if not any(root.iterdir()):
        raise FileNotFoundError(f"Data folder {root} is empty: expected {expected}.")


def idx_source(root: Path) -> DataSource:
    """Official MNIST file names give the splits; anything else is hash-split."""
    names = [path.name for path in root.iterdir() if is_idx_images(path)]
    if any(n.startswith("train-") for n in names) and any(n.startswith("t10k-") for n in names):
        return DataSource(root, "images", {"train": "train-*", "eval": "t10k-*"})
    return DataSource(root, "images", {"all": "*"})


def resolve(data: str = configs.DATA) -> DataSource:
    """The source `data` names; fails, before any component runs, when it has nothing to read."""
    if data == SAMPLE:
        root = configs.DATA_ROOT
        if root == configs.DEFAULT_DATA_ROOT and not root.exists():
            mnist_sample.write_sample(root, configs.SAMPLE_SIZE, configs.DATA_SEED)
        _nonempty_folder(root, "TFRecord files of tf.Examples (`make data` writes the sample)")
        return DataSource(root, "tfrecords", {"all": "*"})
    if data == FULL_MNIST:
        return idx_source(mnist_download.fetch_mnist(configs.MNIST_MIRROR))
    root = Path(data).expanduser().resolve()
    _nonempty_folder(root, "class sub-folders of images, or MNIST IDX files")
    if any(is_idx_images(path) for path in root.iterdir()):
        return idx_source(root)
    if not any(path.is_dir() for path in root.iterdir()):
        raise FileNotFoundError(
            f"Data folder {root} has no class sub-folders (<root>/<class>/<image>) "
            "and no IDX image files."
        )
    return DataSource(root, "images", {"all": "*/*"})
