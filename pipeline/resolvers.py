"""The two ways a runner resolves earlier runs' artifacts, behind one interface.

`LocalResolvers` uses this project's strategies, which resolve against the run's own artifacts
and so run after them; `BuiltinResolvers` uses TFX's built-in strategies, the only ones KFP v2
compiles, which resolve before the run's own artifacts exist.
"""

import dataclasses

from tfx import v1 as tfx

from components.baseline import CANDIDATE_KEY, LatestBlessedOtherModelStrategy
from components.spans import LatestValidatedSpansStrategy
from components.validation_gate import CURRENT_KEY, STATISTICS_KEY, PreviousStatisticsStrategy

PREVIOUS_STATISTICS = "previous_statistics_resolver"
BASELINE_MODEL = "latest_blessed_model_resolver"
WARM_START_MODEL = "warm_start_model_resolver"
TRAINING_SPANS = "latest_spans_resolver"


def all_statistics() -> tfx.dsl.Channel:
    return tfx.dsl.Channel(type=tfx.types.standard_artifacts.ExampleStatistics)


def blessed_model_resolver(
    node_id: str, strategy=tfx.dsl.experimental.LatestBlessedModelStrategy, **inputs
) -> tfx.dsl.Resolver:
    """The latest blessed model (with its blessing) by `strategy`, over every run's models."""
    return tfx.dsl.Resolver(
        strategy_class=strategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
        **inputs,
    ).with_id(node_id)


@dataclasses.dataclass(frozen=True)
class LocalResolvers:
    """Previous statistics other than this run's (none on a first run); training on the latest
    `train_spans` spans that passed the gate; the last blessed model other than the candidate
    as the Evaluator's baseline (components/baseline.py says why)."""

    train_spans: int = 1

    def previous_statistics(self, statistics_gen) -> tfx.dsl.Resolver:
        return tfx.dsl.Resolver(
            strategy_class=PreviousStatisticsStrategy,
            **{STATISTICS_KEY: all_statistics(), CURRENT_KEY: statistics_gen.outputs["statistics"]},
        ).with_id(PREVIOUS_STATISTICS)

    def training_examples(self, example_gen, validation_gate) -> tuple[list, tfx.dsl.Channel]:
        """(resolver nodes, the Examples that Transform and the Evaluator read)."""
        resolver = tfx.dsl.Resolver(
            strategy_class=LatestValidatedSpansStrategy,
            config={"num_spans": self.train_spans},
            examples=tfx.dsl.Channel(
                type=tfx.types.standard_artifacts.Examples,
                producer_component_id=example_gen.id,
                output_key="examples",
            ),
        ).with_id(TRAINING_SPANS)
        resolver.add_upstream_node(validation_gate)  # this run's span is judged first
        return [resolver], resolver.outputs["examples"]

    def baseline_model(self, candidate: tfx.dsl.Channel) -> tfx.dsl.Resolver:
        return blessed_model_resolver(
            BASELINE_MODEL, LatestBlessedOtherModelStrategy, **{CANDIDATE_KEY: candidate}
        )


@dataclasses.dataclass(frozen=True)
class BuiltinResolvers:
    """The latest statistics, resolved before this run's exist; training on this run's span;
    the latest blessed model as the baseline."""

    def previous_statistics(self, statistics_gen) -> tfx.dsl.Resolver:
        resolver = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
            **{STATISTICS_KEY: all_statistics()},
        ).with_id(PREVIOUS_STATISTICS)
        statistics_gen.add_upstream_node(resolver)
        return resolver

    def training_examples(self, example_gen, validation_gate) -> tuple[list, tfx.dsl.Channel]:
        return [], example_gen.outputs["examples"]

    def baseline_model(self, candidate: tfx.dsl.Channel) -> tfx.dsl.Resolver:
        return blessed_model_resolver(BASELINE_MODEL)
