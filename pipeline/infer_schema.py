"""`make schema DATA=...`: the schema SchemaGen infers for a new data set, to review and check in.

Runs ExampleGen, StatisticsGen and SchemaGen on the data, then adds what inference cannot know
and the pipeline relies on: labels within [0, number of classes), the class names seen, and
every image a decodable one. Use the result with `make run DATA=... SCHEMA=<the file>`.
"""

from pathlib import Path

import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from components.data.atomic import write_atomically
from pipeline import data_source, local_runner, pipeline
from pipeline.console import log_to_file
from pipeline.settings import Settings
from trainer.features import CLASS_NAME_KEY, IMAGE_KEY, LABEL_KEY

HEADER = """# Inferred by SchemaGen from {data} (`make schema`), with the label range,
# the class names and the image domain added. Review it, check it in, and run with
# SCHEMA=<this file>.
"""


def class_names(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> list[str]:
    """Every class name in the (train split's) statistics, sorted as the label ids are."""
    (dataset,) = statistics.datasets
    feature = next(f for f in dataset.features if f.path.step == [CLASS_NAME_KEY])
    names = sorted(bucket.label for bucket in feature.string_stats.rank_histogram.buckets)
    if len(names) != feature.string_stats.unique:
        raise ValueError(
            f"Statistics list {len(names)} of {feature.string_stats.unique} class names"
        )
    return names


def curate(schema: schema_pb2.Schema, names: list[str]) -> schema_pb2.Schema:
    """`schema` with label ids in [0, len(names)), class names from `names`, and every image
    required to decode."""
    curated = schema_pb2.Schema()
    curated.CopyFrom(schema)
    label = tfdv.get_feature(curated, LABEL_KEY)
    label.int_domain.min, label.int_domain.max = 0, len(names) - 1
    class_name = tfdv.get_feature(curated, CLASS_NAME_KEY)
    class_name.ClearField("domain_info")  # digit names are inferred as an int_domain
    class_name.domain = CLASS_NAME_KEY
    kept = [d for d in curated.string_domain if d.name != CLASS_NAME_KEY]
    curated.ClearField("string_domain")
    curated.string_domain.extend(kept)
    curated.string_domain.add(name=CLASS_NAME_KEY, value=names)
    image = tfdv.get_feature(curated, IMAGE_KEY)
    image.image_domain.minimum_supported_image_fraction = 1.0
    return curated


def latest_output(component_root: Path) -> Path:
    """The newest execution's output folder, `<component>/<output>/<execution id>`."""
    return max(component_root.iterdir(), key=lambda path: int(path.name))


def infer(source: data_source.DataSource, settings: Settings) -> Path:
    """Runs the schema pipeline on `source`; returns the curated schema's path."""
    output_dir = settings.schema_output_dir
    root = output_dir / "tfx"
    local_runner.run_pipeline(
        pipeline.create_schema_pipeline(
            pipeline_name=f"{settings.pipeline_name}-schema",
            pipeline_root=str(root),
            ingest=source,
            gates=settings.gates,
            runner=local_runner.local_choices(settings, output_dir / "metadata.sqlite"),
        )
    )
    statistics = tfdv.load_stats_binary(
        str(
            latest_output(root / "StatisticsGen" / "statistics") / "Split-train" / "FeatureStats.pb"
        )
    )
    inferred = tfdv.load_schema_text(
        str(latest_output(root / "SchemaGen" / "schema") / "schema.pbtxt")
    )
    path = output_dir / "schema.pbtxt"
    schema = text_format.MessageToString(curate(inferred, class_names(statistics)))
    write_atomically(path, HEADER.format(data=source.root) + schema)
    return path


def main() -> int:
    settings = Settings.from_env()
    source = data_source.resolve(settings)
    log_path = log_to_file(settings.log_dir, "schema")
    print(f"Inferring a schema for DATA={settings.data} (full log: {log_path})")
    path = infer(source, settings)
    print(
        f"Wrote {path}\nReview it, check it in (e.g. as pipeline/schema/<data set>.pbtxt) and "
        f"run with: make run DATA={settings.data} SCHEMA=<that file>"
    )
    return 0


if __name__ == "__main__":
    local_runner.run_cli(main)
