"""Accuracy intervals on cases whose answers are known."""

import pytest

from pipeline.stats import accuracy_text, wilson_interval


def test_wilson_interval_matches_the_textbook_value_and_stays_in_range():
    low, high = wilson_interval(495, 500)  # 99 % of 500
    assert low == pytest.approx(0.97678, abs=1e-4) and high == pytest.approx(0.99573, abs=1e-4)
    assert wilson_interval(500, 500)[1] == 1.0 and wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    narrow, wide = wilson_interval(990, 1000), wilson_interval(99, 100)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


def test_accuracy_text_names_count_and_interval():
    assert accuracy_text(0.99, 500) == "0.9900 on 500 examples (95 % interval 0.9768-0.9957)"
