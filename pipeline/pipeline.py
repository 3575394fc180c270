"""Wires the TFX components. One function serves every runner (local, Kubeflow, Vertex AI)."""

import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
from kfp.pipeline_spec.pipeline_spec_pb2 import PipelineDeploymentConfig
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from components import splits
from components.baseline import CANDIDATE_KEY, LatestBlessedOtherModelStrategy
from components.image_example_gen import ImageExampleGen
from components.paired_regression import PairedRegression
from components.spans import ImportExampleGen, LatestValidatedSpansStrategy
from components.validation_gate import (
    CURRENT_KEY,
    STATISTICS_KEY,
    PreviousStatisticsStrategy,
    ValidationGate,
)
from trainer.features import LABEL_KEY, PROBABILITIES_OUTPUT, SERVING_DEFAULT_SIGNATURE

ACCURACY_METRIC = "sparse_categorical_accuracy"
ResourceSpec = PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec


def create_eval_config(accuracy_threshold: float, regression_alpha: float) -> tfma.EvalConfig:
    """Accuracy overall and per class (sliced by label) on the test split, gated by an absolute
    floor and, against the last blessed model, by a paired test on the same examples: refused
    when the candidate is worse with p < `regression_alpha` (components/paired_regression.py)."""
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
                                        lower_bound={"value": accuracy_threshold}
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
                                        absolute={"value": regression_alpha},
                                    )
                                ),
                            )
                        ],
                    ),
                ]
            )
        ],
    )


def create_example_gen(
    data_root: str,
    data_kind: str,
    input_splits: dict[str, str] | None,
    max_bad_image_fraction: float,
    span: int | None = None,
):
    """ImportExampleGen for raw tf.Examples (`data_kind` "tfrecords"), ImageExampleGen for image
    folders and IDX files ("images"). `input_splits` maps split names to file patterns under
    `data_root` ({SPAN} picks the newest span, or `span`); a single one (default: every file)
    is hash-split into train, validation and test (components/splits.py)."""
    range_config = None
    if span is not None:
        range_config = tfx.proto.RangeConfig(
            static_range=tfx.proto.StaticRange(start_span_number=span, end_span_number=span)
        )
    input_splits = input_splits or {"all": "*"}
    input_config = tfx.proto.Input(
        splits=[tfx.proto.Input.Split(name=n, pattern=p) for n, p in input_splits.items()]
    )
    output_config = splits.output_config() if len(input_splits) == 1 else None
    if data_kind == "tfrecords":
        return ImportExampleGen(
            input_base=data_root,
            input_config=input_config,
            output_config=output_config,
            range_config=range_config,
        )
    return ImageExampleGen(
        data_root,
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


def create_schema_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    example_gen_args: dict,
    beam_pipeline_args: list[str],
    metadata_connection_config: metadata_store_pb2.ConnectionConfig | None = None,
) -> tfx.dsl.Pipeline:
    """ExampleGen, StatisticsGen and SchemaGen alone: a new data set's schema, to review."""
    example_gen = create_example_gen(**example_gen_args)
    statistics_gen = create_statistics_gen(example_gen.outputs["examples"])
    schema_gen = create_inferred_schema_gen(statistics_gen.outputs["statistics"])
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=[example_gen, statistics_gen, schema_gen],
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args,
    )


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    example_gen_args: dict,
    serving_model_dir: str,
    preprocessing_fn: str,
    run_fn: str,
    training_config: dict,
    eval_accuracy_threshold: float,
    eval_regression_alpha: float,
    beam_pipeline_args: list[str],
    metadata_connection_config: metadata_store_pb2.ConnectionConfig | None = None,
    enable_cache: bool = True,
    trainer_resources: ResourceSpec | None = None,
    vertex_training: dict | None = None,
    builtin_resolvers_only: bool = False,
    max_label_drift: float = 0.15,
    schema_file: str | None = None,
    train_spans: int = 1,
    warm_start: bool = False,
    validate_only: bool = False,
) -> tfx.dsl.Pipeline:
    """ExampleGen, statistics, schema, validation, Transform, Trainer, Evaluator, Pusher.

    Cluster runners add `trainer_resources` (CPU, memory, GPU of the Trainer's container) or
    `vertex_training` (train as a Vertex AI job instead: custom_config entries of TFX's Google
    Cloud Trainer extension). `builtin_resolvers_only` swaps our resolver strategies (baseline:
    latest blessed model other than the candidate; previous statistics that may be none) for
    TFX's built-in ones, the only ones KFP v2 compiles, and trains on the run's own span.

    Each run ingests the newest span; Transform, Trainer and Evaluator read the latest
    `train_spans` spans that passed the gate (the latest version of each). `warm_start` starts the
    Trainer from the last blessed model. `validate_only` stops after the validation gate (to
    ingest a span that training should read). `example_gen_args` are `create_example_gen`'s.
    """

    def pipeline(components: list) -> tfx.dsl.Pipeline:
        return tfx.dsl.Pipeline(
            pipeline_name=pipeline_name,
            pipeline_root=pipeline_root,
            components=components,
            enable_cache=enable_cache,
            metadata_connection_config=metadata_connection_config,
            beam_pipeline_args=beam_pipeline_args,
        )

    example_gen = create_example_gen(**example_gen_args)
    statistics_gen = create_statistics_gen(example_gen.outputs["examples"])
    all_statistics = tfx.dsl.Channel(type=tfx.types.standard_artifacts.ExampleStatistics)
    if builtin_resolvers_only:  # the latest, resolved before this run's statistics exist
        previous_statistics = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
            **{STATISTICS_KEY: all_statistics},
        )
        statistics_gen.add_upstream_node(previous_statistics)
    else:
        previous_statistics = tfx.dsl.Resolver(
            strategy_class=PreviousStatisticsStrategy,
            **{STATISTICS_KEY: all_statistics, CURRENT_KEY: statistics_gen.outputs["statistics"]},
        )
    previous_statistics = previous_statistics.with_id("previous_statistics_resolver")
    if schema_file:  # a reviewed schema: every run's data is checked against it
        schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file)
    else:
        schema_gen = create_inferred_schema_gen(statistics_gen.outputs["statistics"])
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    validation_gate = ValidationGate(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        anomalies=example_validator.outputs["anomalies"],
        previous_statistics=previous_statistics.outputs["statistics"],
        max_label_drift=max_label_drift,
    )
    validation = [
        example_gen,
        previous_statistics,
        statistics_gen,
        schema_gen,
        example_validator,
        validation_gate,
    ]
    if validate_only:
        return pipeline(validation)
    if builtin_resolvers_only:  # this run's span, which the gate passed
        span_resolvers, training_examples = [], example_gen.outputs["examples"]
    else:  # from every run's Examples, the latest spans that passed the gate
        spans_resolver = tfx.dsl.Resolver(
            strategy_class=LatestValidatedSpansStrategy,
            config={"num_spans": train_spans},
            examples=tfx.dsl.Channel(
                type=tfx.types.standard_artifacts.Examples,
                producer_component_id=example_gen.id,
                output_key="examples",
            ),
        ).with_id("latest_spans_resolver")
        spans_resolver.add_upstream_node(validation_gate)  # this run's span is judged first
        span_resolvers, training_examples = [spans_resolver], spans_resolver.outputs["examples"]
    transform = tfx.components.Transform(
        examples=training_examples,
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=preprocessing_fn,
        # The test split is not even transformed: the Trainer cannot read it.
        splits_config=tfx.proto.SplitsConfig(
            analyze=[splits.TRAIN], transform=[splits.TRAIN, splits.VALIDATION]
        ),
        custom_config={"code_version": training_config["code_version"]},
        # No pre/post-transform statistics: they cost time, and StatisticsGen's must stay the
        # only ExampleStatistics that previous_statistics_resolver can pick.
        disable_statistics=True,
    )
    transform.add_upstream_node(validation_gate)  # bad data stops the run here
    transform.add_upstream_node(example_gen)
    trainer_class = (
        tfx.extensions.google_cloud_ai_platform.Trainer
        if vertex_training
        else tfx.components.Trainer
    )
    warm_start_resolvers, base_model = [], None
    if warm_start:
        warm_start_resolver = tfx.dsl.Resolver(  # built in: it resolves before the Trainer runs
            strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
            model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
            model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
        ).with_id("warm_start_model_resolver")
        warm_start_resolvers, base_model = (
            [warm_start_resolver],
            warm_start_resolver.outputs["model"],
        )
    trainer = trainer_class(
        run_fn=run_fn,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        base_model=base_model,
        train_args=tfx.proto.TrainArgs(splits=[splits.TRAIN]),
        eval_args=tfx.proto.EvalArgs(splits=[splits.VALIDATION]),  # early stopping reads it
        custom_config={**training_config, **(vertex_training or {})},
    )
    if trainer_resources:
        trainer.with_platform_config(trainer_resources)
    if not builtin_resolvers_only:
        strategy, candidate = (
            LatestBlessedOtherModelStrategy,
            {CANDIDATE_KEY: trainer.outputs["model"]},
        )
    else:
        strategy, candidate = tfx.dsl.experimental.LatestBlessedModelStrategy, {}
    model_resolver = tfx.dsl.Resolver(
        strategy_class=strategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
        **candidate,
    ).with_id("latest_blessed_model_resolver")
    evaluator = tfx.components.Evaluator(
        examples=training_examples,  # the test splits of the spans trained on
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        example_splits=[splits.TEST],
        eval_config=create_eval_config(eval_accuracy_threshold, eval_regression_alpha),
    )
    evaluator.add_upstream_node(example_gen)
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_model_dir)
        ),
    )
    return pipeline(
        [
            *validation,
            *span_resolvers,
            transform,
            *warm_start_resolvers,
            trainer,
            model_resolver,
            evaluator,
            pusher,
        ]
    )
