"""Uncertainty of the figures the project prints: accuracy intervals (calibration is
trainer/calibration.py's, as the Trainer measures it too)."""

import math

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
