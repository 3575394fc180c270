"""How a run reads earlier runs' artifacts: TFX's built-in resolver strategies, the only ones KFP
v2 compiles, so that the local runner, Kubeflow and Vertex AI decide alike. Each resolves as the
run starts, from what earlier runs left:

- the previous statistics: the latest train statistics that passed the gate (the gate copies
  them, and a failed gate writes none), which the drift check compares with;
- the latest blessed model: the Evaluator's baseline and, with WARM_START, the Trainer's start
  (components/candidate_check.py says why that never compares a model with itself);
- the latest push: whether the Trainer's model is already what is served.

One local extra, refused when compiling for Kubeflow (kubeflow/runner.py): TRAIN_SPANS above 1
trains on several spans, which needs a strategy of this project's (components/spans.py) that
reads ML Metadata's lineage; KFP v2 resolves at most one artifact by type and properties.
"""

from tfx import v1 as tfx
from tfx.types.experimental.simple_artifacts import Statistics

from components.spans import LatestValidatedSpansStrategy

PREVIOUS_STATISTICS = "previous_statistics_resolver"
LATEST_BLESSED_MODEL = "latest_blessed_model_resolver"
LATEST_PUSH = "latest_push_resolver"
TRAINING_SPANS = "latest_spans_resolver"


def previous_statistics() -> tfx.dsl.Resolver:
    """The latest statistics a ValidationGate passed (its `validated_statistics`)."""
    return tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
        statistics=tfx.dsl.Channel(type=Statistics),
    ).with_id(PREVIOUS_STATISTICS)


def latest_blessed_model() -> tfx.dsl.Resolver:
    """The latest blessed model (with its blessing), over every run's models."""
    return tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id(LATEST_BLESSED_MODEL)


def latest_push() -> tfx.dsl.Resolver:
    """The Pusher's latest output, pushed or not."""
    return tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
        pushed_model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.PushedModel),
    ).with_id(LATEST_PUSH)


def training_spans(example_gen, validation_gate, num_spans: int) -> tfx.dsl.Resolver:
    """The latest `num_spans` spans that passed the gate, this run's included (local only)."""
    resolver = tfx.dsl.Resolver(
        strategy_class=LatestValidatedSpansStrategy,
        config={"num_spans": num_spans},
        examples=tfx.dsl.Channel(
            type=tfx.types.standard_artifacts.Examples,
            producer_component_id=example_gen.id,
            output_key="examples",
        ),
    ).with_id(TRAINING_SPANS)
    resolver.add_upstream_node(validation_gate)  # this run's span is judged first
    return resolver
