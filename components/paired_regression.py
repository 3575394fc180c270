"""PairedRegression: a TFMA metric that says whether the candidate is worse than the baseline on
the same test examples, beyond what chance explains (McNemar's exact test, one-sided).

Two models trained from the same code and data differ by a few tenths of a point from run to run;
an accuracy drop of that size is noise, and a gate that refuses it refuses most retrains. On the
examples where exactly one of the two models is right, a candidate that is no worse is right as
often as the baseline. The p-value below is the chance of the baseline winning at least as many
of those examples as it did if that were so; the Evaluator refuses the candidate when it falls
below the significance level (EVAL_REGRESSION_ALPHA), and the accuracy floor stays a separate
threshold.
"""

import dataclasses
import math
from collections.abc import Iterable

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.utils import model_util

P_VALUE = "paired_regression_p_value"
BASELINE_ONLY_CORRECT = "baseline_only_correct"  # examples only the baseline gets right
CANDIDATE_ONLY_CORRECT = "candidate_only_correct"  # examples only the candidate gets right


def regression_p_value(baseline_only: int, candidate_only: int) -> float:
    """One-sided exact McNemar test: P(X >= baseline_only), X ~ Binomial(discordant, 1/2)."""
    discordant = baseline_only + candidate_only
    tail = sum(math.comb(discordant, k) for k in range(baseline_only, discordant + 1))
    return tail / 2**discordant


@dataclasses.dataclass
class _Counts:
    baseline_only: int = 0
    candidate_only: int = 0

    def add(self, other: "_Counts") -> "_Counts":
        self.baseline_only += other.baseline_only
        self.candidate_only += other.candidate_only
        return self


class PairedRegression(metric_types.Metric):
    """Computed per slice for each candidate, as diff metrics (they need the baseline)."""

    def __init__(self, name: str = P_VALUE):
        super().__init__(self._computations, name=name)

    def _computations(
        self,
        name: str,
        eval_config: config_pb2.EvalConfig,
        model_names: Iterable[str],
        output_names: Iterable[str] = ("",),
        example_weighted: bool = False,
    ) -> metric_types.MetricComputations:
        baseline_spec = model_util.get_baseline_model_spec(eval_config)
        if baseline_spec is None:
            return []
        computations = []
        for model_name in model_names:
            if model_name == baseline_spec.name:
                continue
            for output_name in output_names:
                keys = [
                    metric_types.MetricKey(
                        name=metric_name,
                        model_name=model_name,
                        output_name=output_name,
                        example_weighted=example_weighted,
                        is_diff=True,
                    )
                    for metric_name in (name, BASELINE_ONLY_CORRECT, CANDIDATE_ONLY_CORRECT)
                ]
                combiner = _PairedCombiner(
                    keys, eval_config, baseline_spec.name, model_name, output_name
                )
                computations.append(metric_types.MetricComputation(keys, None, combiner))
        return computations


class _PairedCombiner(beam.CombineFn):
    def __init__(self, keys, eval_config, baseline_name: str, model_name: str, output_name: str):
        self._keys = keys
        self._eval_config = eval_config
        self._models = (baseline_name, model_name)
        self._output_name = output_name

    def _correct(self, element: metric_types.StandardMetricInputs, model_name: str) -> bool:
        label, prediction, _ = next(
            metric_util.to_label_prediction_example_weight(
                element,
                eval_config=self._eval_config,
                model_name=model_name,
                output_name=self._output_name,
                flatten=False,
            )
        )
        return int(np.argmax(prediction)) == int(np.ravel(label)[0])

    def create_accumulator(self) -> _Counts:
        return _Counts()

    def add_input(self, counts: _Counts, element: metric_types.StandardMetricInputs) -> _Counts:
        baseline, candidate = (self._correct(element, name) for name in self._models)
        return counts.add(_Counts(int(baseline and not candidate), int(candidate and not baseline)))

    def merge_accumulators(self, accumulators: Iterable[_Counts]) -> _Counts:
        merged = _Counts()
        for counts in accumulators:
            merged.add(counts)
        return merged

    def extract_output(self, counts: _Counts) -> dict:
        p_value_key, baseline_key, candidate_key = self._keys
        return {
            p_value_key: regression_p_value(counts.baseline_only, counts.candidate_only),
            baseline_key: counts.baseline_only,
            candidate_key: counts.candidate_only,
        }


metric_types.register_metric(PairedRegression)
