"""CandidateCheck: whether the Trainer's model is new; the Evaluator, the serving check and the
Pusher run only for a new one (a `tfx.dsl.Cond`, which KFP v2 compiles to a trigger condition).

The Evaluator's baseline comes from TFX's `LatestBlessedModelStrategy`, resolved as the run
starts: the form that KFP v2 compiles. A re-run with nothing changed takes the Trainer's model
from the cache, and that model is then the baseline itself: evaluated against itself it would
be blessed again and pushed as a copy of the served model under a new version. It was judged
when it was trained, so nothing downstream runs; a new model is compared with the last blessed
one, which is then never the candidate.
"""

from tfx import v1 as tfx
from tfx.types.experimental.simple_artifacts import Metrics

IS_NEW = "is_new"  # the verdict's custom property (1 or 0) that the condition reads


@tfx.dsl.components.component
def CandidateCheck(  # noqa: N802 (a TFX component, named like TFX's)
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    # Metrics: a standard type, which KFP v2 compiles without an importable custom type.
    verdict: tfx.dsl.components.OutputArtifact[Metrics],
    baseline_model: tfx.dsl.components.InputArtifact[  # none before the first blessing
        tfx.types.standard_artifacts.Model
    ] = None,
) -> None:
    verdict.set_int_custom_property(IS_NEW, int(not is_baseline(model, baseline_model)))


def is_baseline(model, baseline_model) -> bool:
    """Whether the candidate is the baseline (the same artifact: the same URI on any runner)."""
    return baseline_model is not None and baseline_model.uri == model.uri
