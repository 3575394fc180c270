"""CandidateCheck: whether the Trainer's model still has to be judged; the Evaluator, the serving
check and the Pusher run only then (a `tfx.dsl.Cond`, which KFP v2 compiles to a trigger
condition).

The Evaluator's baseline comes from TFX's `LatestBlessedModelStrategy`, resolved as the run
starts: the form that KFP v2 compiles. A re-run with nothing changed takes the Trainer's model
from the cache, and that model is then the baseline itself: evaluated against itself it would be
blessed again and pushed as a copy of the served model under a new version. So a model is
judged unless it is both the last blessed one and already in a version folder of the serving
base path; a blessed model whose push failed (a crashed Pusher, a refused serving check) is
judged and pushed again by the next run.
"""

import os

import tensorflow as tf
from tfx import v1 as tfx
from tfx.types.experimental.simple_artifacts import Metrics
from tfx.utils import path_utils

TO_JUDGE = "to_judge"  # the verdict's custom property (1 or 0) that the condition reads
# Written by TensorFlow beside every SavedModel: hashes of its graph, signatures and weights.
FINGERPRINT = "fingerprint.pb"


@tfx.dsl.components.component
def CandidateCheck(  # noqa: N802 (a TFX component, named like TFX's)
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    # Metrics: a standard type, which KFP v2 compiles without an importable custom type.
    verdict: tfx.dsl.components.OutputArtifact[Metrics],
    serving_model_dir: tfx.dsl.components.Parameter[str],
    baseline_model: tfx.dsl.components.InputArtifact[  # none before the first blessing
        tfx.types.standard_artifacts.Model
    ] = None,
) -> None:
    is_baseline = baseline_model is not None and baseline_model.uri == model.uri
    served = is_served(path_utils.serving_model_path(model.uri), serving_model_dir)
    verdict.set_int_custom_property(TO_JUDGE, int(not (is_baseline and served)))


def is_served(saved_model_dir: str, serving_model_dir: str) -> bool:
    """Whether a version folder under `serving_model_dir` holds this SavedModel (the same
    fingerprint: two trainings share a graph, never their weights)."""
    fingerprint_path = os.path.join(saved_model_dir, FINGERPRINT)
    if not tf.io.gfile.exists(fingerprint_path) or not tf.io.gfile.isdir(serving_model_dir):
        return False
    with tf.io.gfile.GFile(fingerprint_path, "rb") as file:
        fingerprint = file.read()
    for version in tf.io.gfile.listdir(serving_model_dir):
        pushed = os.path.join(serving_model_dir, version.rstrip("/"), FINGERPRINT)
        if tf.io.gfile.exists(pushed):
            with tf.io.gfile.GFile(pushed, "rb") as file:
                if file.read() == fingerprint:
                    return True
    return False
