"""Chooses the Evaluator's baseline: the latest blessed model other than the candidate.

TFX's LatestBlessedModelStrategy runs before the Trainer, so a re-run with nothing changed
compares the cached candidate against itself: the Evaluator's inputs change, it evaluates
again and the Pusher pushes a copy of the model being served as a new version. Resolving after
the Trainer and leaving the candidate out keeps such a re-run entirely in the cache, and a new
candidate is still compared with the model that was blessed before it.
"""

from tfx import types
from tfx.dsl.components.common import resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)

CANDIDATE_KEY = "candidate"


class LatestBlessedOtherModelStrategy(resolver.ResolverStrategy):
    """Inputs `model` and `model_blessing` (all of them) and `candidate` (the Trainer's model);
    outputs the latest blessed `model` that is not the candidate, with its `model_blessing`."""

    def resolve_artifacts(
        self, store, input_dict: dict[str, list[types.Artifact]]
    ) -> dict[str, list[types.Artifact]]:
        candidate_ids = {artifact.id for artifact in input_dict[CANDIDATE_KEY]}
        others = {
            "model": [m for m in input_dict["model"] if m.id not in candidate_ids],
            "model_blessing": input_dict["model_blessing"],
        }
        resolved = LatestBlessedModelStrategy().resolve_artifacts(store, others)
        return {**resolved, CANDIDATE_KEY: input_dict[CANDIDATE_KEY]}
