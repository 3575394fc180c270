"""Uncertainty of the figures the project prints: accuracy intervals and calibration."""

import math

import numpy as np

Z_95 = 1.959964  # the standard normal's 97.5th percentile


def wilson_interval(correct: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion: unlike the normal approximation it stays
    inside [0, 1] and holds up near 100 % accuracy, where test sets of a few hundred live."""
    if total == 0:
        return 0.0, 1.0
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_text(accuracy: float, total: int) -> str:
    """'0.9900 on 500 examples (95 % interval 0.9768-0.9957)'."""
    low, high = wilson_interval(round(accuracy * total), total)
    return f"{accuracy:.4f} on {total} examples (95 % interval {low:.4f}-{high:.4f})"


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
