"""CandidateCheck: whether the Trainer's model still has to be judged; the Evaluator, the serving
check and the Pusher run only then (a `tfx.dsl.Cond`, which KFP v2 compiles to a trigger
condition).

The Evaluator's baseline comes from TFX's `LatestBlessedModelStrategy`, resolved as the run
starts: the form that KFP v2 compiles. A re-run with nothing changed takes the Trainer's model
from the cache, and that model is then the baseline itself: evaluated against itself it would be
blessed again and pushed as a copy of the served model under a new version. So a model is
judged unless it is both the last blessed one and what the last push wrote (the same SavedModel
fingerprint in the version folder the Pusher recorded). A blessed model whose push failed (a
crashed Pusher, a refused serving check) is judged and pushed again by the next run. Only
artifacts decide, so the check is cached like any component and its verdict follows them.
"""

import os

import tensorflow as tf
from tfx import v1 as tfx
from tfx.types.experimental.simple_artifacts import Metrics
from tfx.utils import io_utils, path_utils

TO_JUDGE = "to_judge"  # the verdict's custom property (1 or 0) that the condition reads
# Written by TensorFlow beside every SavedModel: hashes of its graph, signatures and weights.
FINGERPRINT = "fingerprint.pb"


@tfx.dsl.components.component
def CandidateCheck(  # noqa: N802 (a TFX component, named like TFX's)
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    # Metrics: a standard type, which KFP v2 compiles without an importable custom type.
    verdict: tfx.dsl.components.OutputArtifact[Metrics],
    # Both none before the first blessing and the first push.
    baseline_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model] = None,
    last_push: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.PushedModel] = None,
) -> None:
    is_baseline = baseline_model is not None and baseline_model.uri == model.uri
    pushed = last_push is not None and last_push.get_int_custom_property("pushed") == 1
    served = pushed and same_saved_model(
        path_utils.serving_model_path(model.uri),
        last_push.get_string_custom_property("pushed_destination"),
    )
    verdict.set_int_custom_property(TO_JUDGE, int(not (is_baseline and served)))


def same_saved_model(one: str, other: str) -> bool:
    """Whether two folders hold the same SavedModel (the same fingerprint: two trainings share
    a graph, never their weights); a folder without one holds none."""
    fingerprints = [os.path.join(folder, FINGERPRINT) for folder in (one, other)]
    if not all(tf.io.gfile.exists(path) for path in fingerprints):
        return False
    first, second = (io_utils.read_bytes_file(path) for path in fingerprints)
    return first == second
