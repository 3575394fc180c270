"""The three splits every ExampleGen of the project writes: train, validation and test.

- train: what the network fits.
- validation: what every training decision reads (early stopping, the best epoch).
- test: what the Evaluator's gate, the run report and every printed accuracy read; no training
  decision ever sees it (Transform does not even transform it, so the Trainer cannot read it).

Data in one piece is hash-split 8:1:1: on the 5,000-digit sample that keeps 4,000 digits to
train on (accuracy grows quickly with them here) and gives about 500 test digits, whose 95 %
interval at 99 % accuracy is about +-0.9 points; TEST_DATA gives the gate a larger test set.
Data with its own train and test splits keeps them, and validation is carved out of train by
the same hash, 1 in 9.
"""

import hashlib
import os
from typing import Any

import apache_beam as beam
import tensorflow as tf
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs

TRAIN, VALIDATION, TEST = "train", "validation", "test"
SPLITS = (TRAIN, VALIDATION, TEST)
HASH_BUCKETS = {TRAIN: 8, VALIDATION: 1, TEST: 1}


def output_config() -> example_gen_pb2.Output:
    """The hash split of data in one piece."""
    return example_gen_pb2.Output(
        split_config=example_gen_pb2.SplitConfig(
            splits=[
                example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
                for name, buckets in HASH_BUCKETS.items()
            ]
        )
    )


def is_validation(record: Any) -> bool:
    """Whether a record of a train split goes to validation: 1 in 9 by a hash of its bytes, so
    that the same data is always carved the same way (and TFX's cache stays valid)."""
    data = record if isinstance(record, bytes) else record.SerializeToString(deterministic=True)
    bucket = int.from_bytes(hashlib.sha256(data).digest()[:8], "big")
    return bucket % (HASH_BUCKETS[TRAIN] + HASH_BUCKETS[VALIDATION]) < HASH_BUCKETS[VALIDATION]


def split_files(examples_uri: str, split: str) -> list[str]:
    """The files of one split of an Examples artifact (GZIP TFRecords, as ExampleGen writes)."""
    return sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))


def _split_order(name: str) -> int:
    return SPLITS.index(name) if name in SPLITS else len(SPLITS)


class ValidationCarvingExecutor:
    """Mixin for an ExampleGen executor class: when the input has a train split but no
    validation split (IDX `train-*`/`t10k-*`, class folders with train/ and test/, TEST_DATA),
    validation is carved out of train."""

    def Do(  # noqa: N802 (TFX's name)
        self, input_dict: dict, output_dict: dict, exec_properties: dict
    ) -> Any:
        # TFX's Do names the splits on the artifact before it writes them; the carving below
        # renames them in between, so it needs the artifacts.
        self._examples = output_dict[standard_component_specs.EXAMPLES_KEY]
        return super().Do(input_dict, output_dict, exec_properties)

    def GenerateExamplesByBeam(  # noqa: N802 (TFX's name)
        self, pipeline: beam.Pipeline, exec_properties: dict
    ) -> dict[str, beam.PCollection]:
        splits = super().GenerateExamplesByBeam(pipeline, exec_properties)
        if TRAIN in splits and VALIDATION not in splits:
            train, validation = splits.pop(TRAIN) | "CarveValidation" >> beam.Partition(
                lambda record, _: int(is_validation(record)), 2
            )
            splits.update({TRAIN: train, VALIDATION: validation})
            for artifact in self._examples:
                artifact.split_names = artifact_utils.encode_split_names(
                    sorted(splits, key=_split_order)
                )
        return splits
