"""Temperature scaling: one number, fitted on the validation split after training, that makes the
exported probabilities mean what they say.

Label smoothing and the ensemble's averaging keep the network's probabilities low (a right
answer at 0.7 where nine in ten such answers are right); dividing the log-probabilities by a
temperature below 1 sharpens them without changing which class is on top, so accuracy stays
exactly as it was (Guo et al., "On Calibration of Modern Neural Networks", 2017).
"""

import math

import numpy as np
import tensorflow as tf

# The temperature is searched on a log scale between these: far outside, a model is broken,
# not miscalibrated.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 20.0
SMALLEST_PROBABILITY = 1e-12  # log(0) guard: a class the network rules out entirely
# The share of right validation answers that `unfamiliar_below` may hold under the threshold:
# as an outlier detector is set, to keep nearly all of the pictures it was made for.
UNFAMILIAR_SHARE = 0.005


def scaled(probabilities, temperature: float):
    """softmax(log(p) / T), in TensorFlow (inside the exported graph) or NumPy alike."""
    if isinstance(probabilities, np.ndarray):
        logits = np.log(np.maximum(probabilities, SMALLEST_PROBABILITY)) / temperature
        logits -= logits.max(axis=-1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=-1, keepdims=True)
    logits = tf.math.log(tf.maximum(probabilities, SMALLEST_PROBABILITY)) / temperature
    return tf.nn.softmax(logits, axis=-1)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.maximum(picked, SMALLEST_PROBABILITY))))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of `labels` under the scaled
    `probabilities` [N, classes]: a golden-section search over log T (the likelihood is convex
    in 1/T, so unimodal there). 1.0 (unchanged) when there is nothing to fit on."""
    if len(labels) == 0:
        return 1.0
    labels = np.asarray(labels, dtype=np.int64)

    def loss(log_t: float) -> float:
        return negative_log_likelihood(scaled(probabilities, math.exp(log_t)), labels)

    low, high = math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    loss_a, loss_b = loss(a), loss(b)
    while high - low > 1e-4:
        if loss_a < loss_b:
            high, b, loss_b = b, a, loss_a
            a = high - ratio * (high - low)
            loss_a = loss(a)
        else:
            low, a, loss_a = a, b, loss_b
            b = low + ratio * (high - low)
            loss_b = loss(b)
    return math.exp((low + high) / 2)


def unfamiliar_below(
    probabilities: np.ndarray, labels: np.ndarray, share: float = UNFAMILIAR_SHARE
) -> float:
    """The network's own top probability (before the temperature) under which `share` of its
    right answers fall; 0.0 (nothing held) where none is right.

    The Trainer trains pictures of no one digit (pairs, filled shapes, faces) towards the
    uniform distribution ("outlier exposure"), so a low top probability from the network says
    "unlike any digit it learnt". The temperature, fitted on digits alone, sharpens that too: a
    face read as a 0 at 0.3 comes out at about 0.6 with a temperature of 0.4. Under this level
    the exported confidence is held under the threshold instead (trainer/export.py)."""
    right = probabilities.argmax(axis=1) == labels
    if not right.any():
        return 0.0
    return float(np.quantile(probabilities.max(axis=1)[right], share))


def reliability(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = 10
) -> tuple[list[dict], float]:
    """Per confidence bin (top-class probability): count, mean confidence and accuracy; and the
    expected calibration error, their count-weighted mean gap."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    rows, gap = [], 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            rows.append(
                {
                    "low": float(low),
                    "high": float(high),
                    "count": int(inside.sum()),
                    "confidence": float(confidence[inside].mean()),
                    "accuracy": float(correct[inside].mean()),
                }
            )
            gap += inside.sum() * abs(confidence[inside].mean() - correct[inside].mean())
    return rows, float(gap / max(len(labels), 1))
