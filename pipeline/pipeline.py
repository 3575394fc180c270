"""Wires the TFX components, in three phases: ingest and validate the data; transform and
train; for a model still to judge, evaluate, check serving and push. One function serves every
runner (local, Kubeflow, Vertex AI), with the same resolvers (pipeline/resolvers.py) and so the
same decisions; what differs between runners arrives as one `RunnerChoices`.
"""

import dataclasses

import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.dsl.placeholder.placeholder_base import Predicate

from components import atomic_pusher, splits
from components.candidate_check import TO_JUDGE, CandidateCheck
from components.image_example_gen import image_example_gen
from components.paired_regression import PairedRegression
from components.serving_check import ServingValidator
from components.spans import IMPORT_EXAMPLE_GEN_ID, SpanImportExampleGen
from components.validation_gate import ValidationGate
from pipeline import resolvers
from pipeline.data_source import Ingest
from pipeline.settings import PREPROCESSING_FN, RUN_FN, Gates
from trainer.config import TrainingConfig
from trainer.features import (
    DIGITS_PROFILE,
    IMAGE_PROFILE_CONFIG,
    LABEL_KEY,
    PROBABILITIES_OUTPUT,
    SERVING_DEFAULT_SIGNATURE,
    ImageProfile,
)

ACCURACY_METRIC = "sparse_categorical_accuracy"


@dataclasses.dataclass(frozen=True)
class RunnerChoices:
    """What differs between runners: where Beam and ML Metadata run, and how the Trainer runs (a
    plain component, or a Vertex AI job with its custom_config entries; the container's
    resources as a platform config). What the runs decide is the same on every runner."""

    beam_pipeline_args: list[str]
    metadata_connection_config: metadata_store_pb2.ConnectionConfig | None = None
    trainer_class: type = tfx.components.Trainer
    trainer_custom_config: dict = dataclasses.field(default_factory=dict)
    trainer_platform_config: object = None  # e.g. KFP's ResourceSpec
    model_server: str = "auto"  # the serving check's (components/serving_check.py)


def create_eval_config(gates: Gates) -> tfma.EvalConfig:
    """Accuracy overall and per class (sliced by label) on the test split, gated by an absolute
    floor and, against the last blessed model, by a paired test on the same examples: refused
    when the candidate is worse with p < `gates.regression_alpha`
    (components/paired_regression.py)."""
    overall = [tfma.SlicingSpec()]  # the gate is overall only
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=SERVING_DEFAULT_SIGNATURE,
                label_key=LABEL_KEY,
                prediction_key=PROBABILITIES_OUTPUT,
            )
        ],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[LABEL_KEY])],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(
                        class_name="SparseCategoricalAccuracy",
                        per_slice_thresholds=[
                            tfma.PerSliceMetricThreshold(
                                slicing_specs=overall,
                                threshold=tfma.MetricThreshold(
                                    value_threshold=tfma.GenericValueThreshold(
                                        lower_bound={"value": gates.accuracy_floor}
                                    )
                                ),
                            )
                        ],
                    ),
                    tfma.MetricConfig(class_name="ExampleCount"),
                    tfma.MetricConfig(
                        class_name=PairedRegression.__name__,
                        module=PairedRegression.__module__,
                        per_slice_thresholds=[
                            tfma.PerSliceMetricThreshold(
                                slicing_specs=overall,
                                threshold=tfma.MetricThreshold(
                                    change_threshold=tfma.GenericChangeThreshold(
                                        direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                                        absolute={"value": gates.regression_alpha},
                                    )
                                ),
                            )
                        ],
                    ),
                ]
            )
        ],
    )


def create_example_gen(ingest: Ingest, max_bad_image_fraction: float):
    """ImportExampleGen for raw tf.Examples, ImageExampleGen for image folders and IDX files."""
    range_config = None
    if ingest.span is not None:
        range_config = tfx.proto.RangeConfig(
            static_range=tfx.proto.StaticRange(
                start_span_number=ingest.span, end_span_number=ingest.span
            )
        )
    input_splits = ingest.splits or {"all": "*"}
    input_config = tfx.proto.Input(
        splits=[tfx.proto.Input.Split(name=n, pattern=p) for n, p in input_splits.items()]
    )
    output_config = splits.output_config() if len(input_splits) == 1 else None
    if ingest.kind == "tfrecords":
        return SpanImportExampleGen(
            input_base=ingest.data_root,
            input_config=input_config,
            output_config=output_config,
            range_config=range_config,
        ).with_id(IMPORT_EXAMPLE_GEN_ID)
    return image_example_gen(
        ingest.data_root,
        input_config,
        output_config,
        range_config=range_config,
        max_bad_fraction=max_bad_image_fraction,
    )


def statistics_options() -> tfdv.StatsOptions:
    """Statistics with image formats and sizes (semantic domain statistics), which the schema's
    image_domain checks: the share of values that decode as images."""
    return tfdv.StatsOptions(enable_semantic_domain_stats=True)


def create_statistics_gen(examples: tfx.dsl.Channel) -> tfx.components.StatisticsGen:
    return tfx.components.StatisticsGen(examples=examples, stats_options=statistics_options())


def create_inferred_schema_gen(statistics: tfx.dsl.Channel) -> tfx.components.SchemaGen:
    """A schema inferred from the train split; the other splits are checked against it."""
    return tfx.components.SchemaGen(
        statistics=statistics,
        infer_feature_shape=True,
        exclude_splits=[splits.VALIDATION, splits.TEST],
    )


def _pipeline(
    pipeline_name: str, pipeline_root: str, components: list, runner: RunnerChoices, cache: bool
) -> tfx.dsl.Pipeline:
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=cache,
        metadata_connection_config=runner.metadata_connection_config,
        beam_pipeline_args=runner.beam_pipeline_args,
    )


def create_schema_pipeline(
    pipeline_name: str, pipeline_root: str, ingest: Ingest, gates: Gates, runner: RunnerChoices
) -> tfx.dsl.Pipeline:
    """ExampleGen, StatisticsGen and SchemaGen alone: a new data set's schema, to review."""
    example_gen = create_example_gen(ingest, gates.max_bad_image_fraction)
    statistics_gen = create_statistics_gen(example_gen.outputs["examples"])
    schema_gen = create_inferred_schema_gen(statistics_gen.outputs["statistics"])
    components = [example_gen, statistics_gen, schema_gen]
    return _pipeline(pipeline_name, pipeline_root, components, runner, cache=True)


@dataclasses.dataclass
class ValidatedData:
    """The first phase's components, and the outputs that the later phases read."""

    components: list
    example_gen: object
    schema: tfx.dsl.Channel
    gate: object
    training_examples: tfx.dsl.Channel  # the spans that Transform and the Evaluator read


def ingest_and_validate(
    ingest: Ingest, schema_file: str | None, gates: Gates, train_spans: int = 1
) -> ValidatedData:
    """ExampleGen, statistics, the schema (a reviewed file, else inferred), ExampleValidator and
    the gate: anomalies, too many bad images or a drifted class distribution stop the run.
    Training reads this run's span, or the latest `train_spans` that passed (local only)."""
    example_gen = create_example_gen(ingest, gates.max_bad_image_fraction)
    statistics_gen = create_statistics_gen(example_gen.outputs["examples"])
    statistics = statistics_gen.outputs["statistics"]
    previous_statistics = resolvers.previous_statistics()
    if schema_file:  # a reviewed schema: every run's data is checked against it
        schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file)
    else:
        schema_gen = create_inferred_schema_gen(statistics)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics, schema=schema_gen.outputs["schema"]
    )
    gate = ValidationGate(
        statistics=statistics,
        schema=schema_gen.outputs["schema"],
        anomalies=example_validator.outputs["anomalies"],
        previous_statistics=previous_statistics.outputs["statistics"],
        max_label_drift=gates.max_label_drift,
    )
    components = [
        example_gen,
        previous_statistics,
        statistics_gen,
        schema_gen,
        example_validator,
        gate,
    ]
    training_examples = example_gen.outputs["examples"]
    if train_spans > 1:
        spans = resolvers.training_spans(example_gen, gate, train_spans)
        components.append(spans)
        training_examples = spans.outputs["examples"]
    return ValidatedData(
        components, example_gen, schema_gen.outputs["schema"], gate, training_examples
    )


@dataclasses.dataclass
class TrainedModel:
    """The second phase's components, the candidate model, the baseline it would be compared
    with, and whether it still has to be judged (the later phases run only then)."""

    components: list
    model: tfx.dsl.Channel
    baseline: tfx.dsl.Channel
    to_judge: Predicate  # for tfx.dsl.Cond


def transform_and_train(
    data: ValidatedData,
    training: TrainingConfig,
    profile: ImageProfile,
    runner: RunnerChoices,
    warm_start: bool,
) -> TrainedModel:
    """Transform (analyzes train, transforms train and validation: the Trainer cannot read the
    test split) and the Trainer, both for the image `profile`; the Trainer selects on
    validation (warm-started from the last blessed model
    with `warm_start`), and whether its model still has to be judged: not when it is the last
    blessed one and what the last push wrote (components/candidate_check.py)."""
    transform = tfx.components.Transform(
        examples=data.training_examples,
        schema=data.schema,
        preprocessing_fn=PREPROCESSING_FN,
        splits_config=tfx.proto.SplitsConfig(
            analyze=[splits.TRAIN], transform=[splits.TRAIN, splits.VALIDATION]
        ),
        custom_config={
            "code_version": training.code_version,
            IMAGE_PROFILE_CONFIG: profile.to_json(),
        },
        # No pre/post-transform statistics: they cost time, and the drift check reads the
        # gate's copy of StatisticsGen's.
        disable_statistics=True,
    )
    # Bad data stops the run at the gate; the ExampleGen edge is the data's own, which the
    # span resolver's channel does not carry.
    transform.add_upstream_node(data.gate)
    transform.add_upstream_node(data.example_gen)
    latest_blessed = resolvers.latest_blessed_model()
    trainer = runner.trainer_class(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=data.schema,
        base_model=latest_blessed.outputs["model"] if warm_start else None,
        train_args=tfx.proto.TrainArgs(splits=[splits.TRAIN]),
        eval_args=tfx.proto.EvalArgs(splits=[splits.VALIDATION]),  # early stopping reads it
        custom_config={
            **training.to_custom_config(),
            IMAGE_PROFILE_CONFIG: profile.to_json(),
            **runner.trainer_custom_config,
        },
    )
    if runner.trainer_platform_config is not None:
        trainer.with_platform_config(runner.trainer_platform_config)
    last_push = resolvers.latest_push()
    check = CandidateCheck(
        model=trainer.outputs["model"],
        baseline_model=latest_blessed.outputs["model"],
        last_push=last_push.outputs["pushed_model"],
    )
    return TrainedModel(
        components=[transform, latest_blessed, trainer, last_push, check],
        model=trainer.outputs["model"],
        baseline=latest_blessed.outputs["model"],
        to_judge=check.outputs["verdict"].future()[0].custom_property(TO_JUDGE) == 1,
    )


def evaluate(data: ValidatedData, candidate: TrainedModel, gates: Gates):
    """The Evaluator: the test splits of the spans trained on, gated by `gates` against the
    last blessed model."""
    evaluator = tfx.components.Evaluator(
        examples=data.training_examples,
        model=candidate.model,
        baseline_model=candidate.baseline,
        example_splits=[splits.TEST],
        eval_config=create_eval_config(gates),
    )
    evaluator.add_upstream_node(data.example_gen)
    return evaluator


def check_serving_and_push(
    data: ValidatedData,
    candidate: TrainedModel,
    evaluator,
    gates: Gates,
    runner: RunnerChoices,
    serving_model_dir: str,
) -> list:
    """The serving check (a model server loads the candidate and answers a few of this run's
    test examples as the model does), then the Pusher into TF Serving's layout,
    `<serving_model_dir>/<version>/`: only a model both blessed and checked is pushed."""
    serving_check = ServingValidator(
        model=candidate.model,
        examples=data.example_gen.outputs["examples"],
        server=runner.model_server,
        max_load_seconds=gates.serving_max_load_seconds,
        max_latency_ms=gates.serving_max_latency_ms,
    )
    serving_check.add_upstream_node(evaluator)  # a model the Evaluator judged
    pusher = atomic_pusher.Pusher(  # TFX's Pusher, publishing each version whole
        model=candidate.model,
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=serving_check.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_model_dir)
        ),
    )
    return [serving_check, pusher]


def create_validation_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    ingest: Ingest,
    schema_file: str | None,
    gates: Gates,
    runner: RunnerChoices,
    enable_cache: bool = True,
) -> tfx.dsl.Pipeline:
    """The first phase alone: ingests and validates a span that training should read too."""
    data = ingest_and_validate(ingest, schema_file, gates)
    return _pipeline(pipeline_name, pipeline_root, data.components, runner, enable_cache)


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    ingest: Ingest,
    schema_file: str | None,
    training: TrainingConfig,
    gates: Gates,
    serving_model_dir: str,
    runner: RunnerChoices,
    profile: ImageProfile = DIGITS_PROFILE,
    train_spans: int = 1,
    warm_start: bool = False,
    enable_cache: bool = True,
) -> tfx.dsl.Pipeline:
    """Ingest and validate; transform and train for the image `profile`; for a model still to
    judge, evaluate, check serving and push."""
    data = ingest_and_validate(ingest, schema_file, gates, train_spans)
    candidate = transform_and_train(data, training, profile, runner, warm_start)
    with tfx.dsl.Cond(candidate.to_judge):
        evaluator = evaluate(data, candidate, gates)
        push = check_serving_and_push(data, candidate, evaluator, gates, runner, serving_model_dir)
    components = [*data.components, *candidate.components, evaluator, *push]
    return _pipeline(pipeline_name, pipeline_root, components, runner, enable_cache)
