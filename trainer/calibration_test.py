"""Calibration on models whose miscalibration is known: a made-up model over- or under-confident
by a known temperature, and the reliability of known cases."""

import numpy as np
import pytest

from trainer.calibration import fit_temperature, reliability, scaled, unfamiliar_below


def known_model(temperature: float, examples: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities softmax(z / temperature) of labels drawn from softmax(z): calibrated at
    temperature 1, over-confident below it, under-confident above it."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (examples, 10))
    truth = scaled(np.exp(logits), 1.0)
    labels = np.array([rng.choice(10, p=p) for p in truth])
    return scaled(np.exp(logits), temperature), labels


@pytest.mark.parametrize("miscalibration", [0.5, 2.0], ids=["over-confident", "under-confident"])
def test_the_fitted_temperature_undoes_a_known_miscalibration(miscalibration):
    probabilities, labels = known_model(miscalibration)
    temperature = fit_temperature(probabilities, labels)
    assert temperature == pytest.approx(1 / miscalibration, rel=0.05)
    calibrated = scaled(probabilities, temperature)
    before, after = reliability(probabilities, labels)[1], reliability(calibrated, labels)[1]
    assert before > 0.05 and after < 0.015  # measured: 0.14 / 0.12 -> under 0.01
    assert (calibrated.argmax(1) == probabilities.argmax(1)).all()  # accuracy unchanged


def test_a_calibrated_model_keeps_temperature_one_and_nothing_to_fit_is_one():
    probabilities, labels = known_model(1.0)
    assert fit_temperature(probabilities, labels) == pytest.approx(1.0, rel=0.05)
    assert fit_temperature(probabilities[:0], labels[:0]) == 1.0


def test_reliability_of_a_calibrated_and_an_overconfident_model():
    labels = np.array([0] * 8 + [1] * 2)
    calibrated = np.tile([0.8, 0.2], (10, 1))  # 80 % sure, right 8 times in 10
    rows, ece = reliability(calibrated, labels)
    assert ece == pytest.approx(0.0)
    assert [(r["count"], r["confidence"], r["accuracy"]) for r in rows] == [(10, 0.8, 0.8)]
    overconfident = np.tile([0.99, 0.01], (10, 1))
    assert reliability(overconfident, labels)[1] == pytest.approx(0.19)


def test_the_unfamiliar_level_holds_half_a_percent_of_right_answers_and_nothing_without_any():
    rng = np.random.default_rng(0)
    top = rng.uniform(0.4, 1.0, 2000)  # the network's own top probability, class 0 on top
    probabilities = np.column_stack([top, (1 - top) / 2, (1 - top) / 2])
    labels = np.where(np.arange(2000) % 10 == 0, 1, 0)  # one answer in ten wrong
    level = unfamiliar_below(probabilities, labels)
    right = labels == 0
    assert np.mean(top[right] < level) == pytest.approx(0.005, abs=0.001)
    assert unfamiliar_below(probabilities, np.ones(2000, dtype=int)) == 0.0
