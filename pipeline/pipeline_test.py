"""The Evaluator's gate on constructed cases: the paired regression metric computed by the
combiner TFMA runs on Beam, from per-example predictions, then judged by TFMA's own validator."""

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.evaluators import metrics_validator
from tensorflow_model_analysis.metrics import metric_specs, metric_types
from tensorflow_model_analysis.utils import config_util

from components.paired_regression import (
    BASELINE_ONLY_CORRECT,
    P_VALUE,
    PairedRegression,
    regression_p_value,
)
from pipeline.pipeline import ACCURACY_METRIC, create_eval_config
from pipeline.settings import Gates

FLOOR, ALPHA = 0.97, 0.05
CANDIDATE, BASELINE = "candidate", "baseline"


def eval_config() -> tfma.EvalConfig:
    """The project's gate as TFX's Evaluator sees it with a baseline model."""
    config = create_eval_config(Gates(accuracy_floor=FLOOR, regression_alpha=ALPHA))
    (spec,) = config.model_specs
    candidate, baseline = tfma.ModelSpec(), tfma.ModelSpec()
    candidate.CopyFrom(spec)
    baseline.CopyFrom(spec)
    candidate.name, baseline.name, baseline.is_baseline = CANDIDATE, BASELINE, True
    del config.model_specs[:]
    config.model_specs.extend([candidate, baseline])
    return config_util.update_eval_config_with_defaults(config, has_baseline=True)


def one_hot(classes: np.ndarray) -> np.ndarray:
    return np.eye(10)[classes] * 0.9 + 0.01


def paired_metrics(labels: np.ndarray, baseline: np.ndarray, candidate: np.ndarray) -> dict:
    """The metric's values, computed by its combiner on Beam from per-example predictions."""
    config = eval_config()
    computations = [
        c
        for c in metric_specs.to_computations(config.metrics_specs, config)
        if any(key.name == P_VALUE for key in c.keys)
    ]
    (computation,) = computations
    inputs = [
        metric_types.StandardMetricInputs(
            labels=np.array([label]),
            predictions={BASELINE: one_hot(b), CANDIDATE: one_hot(c)},
            example_weights=np.array([1.0]),
        )
        for label, b, c in zip(labels, baseline, candidate, strict=True)
    ]
    combiner = computation.combiner
    halves = [combiner.create_accumulator(), combiner.create_accumulator()]
    for index, element in enumerate(inputs):  # two workers' shares, merged as Beam does
        halves[index % 2] = combiner.add_input(halves[index % 2], element)
    outputs = combiner.extract_output(combiner.merge_accumulators(halves))
    return {key.name: value for key, value in outputs.items()}, computation.keys


def verdict(metrics: dict) -> list[str]:
    """The names of the metrics whose thresholds fail, judged by TFMA's validator."""
    result = metrics_validator.validate_metrics(((), metrics), eval_config())
    return sorted(
        failure.metric_key.name
        for details in result.metric_validations_per_slice
        for failure in details.failures
    )


def accuracy_key(model_name: str) -> metric_types.MetricKey:
    """The key TFMA's validator expects the accuracy under, from the gate's thresholds."""
    config = eval_config()
    thresholds = metric_specs.metric_thresholds_from_metrics_specs(config.metrics_specs, config)
    (key,) = [
        key
        for key in thresholds
        if key.name == ACCURACY_METRIC and key.model_name == model_name and not key.is_diff
    ]
    return key


def test_exact_one_sided_mcnemar_p_values():
    assert regression_p_value(0, 0) == 1.0
    assert regression_p_value(3, 4) == pytest.approx(99 / 128)
    assert regression_p_value(10, 0) == pytest.approx(1 / 1024)
    assert regression_p_value(0, 10) == 1.0


@pytest.mark.parametrize(
    "case, baseline_wrong, candidate_wrong, refused",
    [
        ("equal models", range(10), range(10), False),
        ("run-to-run spread", range(10), range(4, 16), False),  # 4 vs 6 discordant
        ("clearly worse", range(5), range(5, 30), True),  # 25 vs 5
    ],
)
def test_regression_refused_only_when_significant(case, baseline_wrong, candidate_wrong, refused):
    labels = np.arange(2000) % 10  # every candidate here is above the floor
    baseline, candidate = labels.copy(), labels.copy()
    baseline[list(baseline_wrong)] += 1
    candidate[list(candidate_wrong)] += 1
    baseline, candidate = baseline % 10, candidate % 10
    metrics, keys = paired_metrics(labels, baseline, candidate)
    only_baseline = len(set(candidate_wrong) - set(baseline_wrong))
    assert metrics[BASELINE_ONLY_CORRECT] == only_baseline
    values = {key: metrics[key.name] for key in keys}
    values[accuracy_key(CANDIDATE)] = np.mean(candidate == labels)
    values[accuracy_key(CANDIDATE).make_diff_key()] = np.mean(candidate == labels) - np.mean(
        baseline == labels
    )
    assert verdict(values) == ([P_VALUE] if refused else [])


def test_accuracy_floor_breach_is_refused_even_without_a_regression():
    labels = np.arange(500) % 10
    predictions = labels.copy()
    predictions[:50] = (predictions[:50] + 1) % 10  # 90 %: below the floor
    metrics, keys = paired_metrics(labels, predictions, predictions)
    values = {key: metrics[key.name] for key in keys}
    values[accuracy_key(CANDIDATE)] = 0.9
    assert verdict(values) == [ACCURACY_METRIC]


def test_the_metric_is_registered_for_the_evaluator():
    assert metric_types.registered_metrics()[PairedRegression.__name__] is PairedRegression
