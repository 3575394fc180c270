"""Prometheus metrics under TF Serving's own names, so dashboards written for TF Serving work:
`:tensorflow:serving:request_count` (by model and status), `:tensorflow:serving:request_latency`
(a histogram in microseconds, by model, API and entrypoint, with TF Serving's buckets) and
`:tensorflow:cc:saved_model:load_attempt_count` (by model path and status); and, in the same
style, the request log's records (`:tensorflow:serving:request_log_count`, by model and status:
written, sampled_out, dropped, failed) and `make monitor`'s last distances of the served
inputs from the training data (`:tensorflow:serving:input_drift` and `..._threshold` gauges, by
model, version, feature and measure: alert where one passes the other), which TF Serving has no
names for."""

import bisect
import json
import threading
from collections import Counter, defaultdict
from pathlib import Path

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
LOAD_ATTEMPTS = ":tensorflow:cc:saved_model:load_attempt_count"
REQUEST_LOG_COUNT = ":tensorflow:serving:request_log_count"
INPUT_DRIFT = ":tensorflow:serving:input_drift"
# TF Serving's request_latency buckets: scale 10 us, power 1.8, 33 buckets (about 20 minutes).
LATENCY_BUCKETS_US = [10 * 1.8**i for i in range(33)]


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{name}="{escape(str(value))}"' for name, value in labels.items()) + "}"


class Metrics:
    """Thread-safe counters and latency histograms, written in Prometheus' text format, and the
    drift gauges read from `drift_file` when it exists."""

    def __init__(self, drift_file: Path | None = None):
        self._lock = threading.Lock()
        self.drift_file = drift_file
        self._requests: Counter = Counter()  # (model, status) -> count
        self._loads: Counter = Counter()  # (path, status) -> count
        self._logged: Counter = Counter()  # (model, status) -> count
        self._latency: dict[tuple, list[int]] = defaultdict(
            lambda: [0] * (len(LATENCY_BUCKETS_US) + 1)
        )
        self._latency_sum: Counter = Counter()

    def record_request(
        self, model: str, status: str, api: str, entrypoint: str, seconds: float
    ) -> None:
        micros = seconds * 1e6
        key = (model, api, entrypoint)
        with self._lock:
            self._requests[(model, status)] += 1
            self._latency[key][bisect.bisect_left(LATENCY_BUCKETS_US, micros)] += 1
            self._latency_sum[key] += micros

    def record_load(self, model_path: str, succeeded: bool) -> None:
        with self._lock:
            self._loads[(model_path, "success" if succeeded else "fail")] += 1

    def record_logged(self, model: str, status: str, count: int = 1) -> None:
        if count:
            with self._lock:
                self._logged[(model, status)] += count

    def text(self) -> str:
        """The exposition text, as TF Serving's /monitoring/prometheus/metrics serves it."""
        with self._lock:
            lines = [f"# TYPE {REQUEST_COUNT} counter"]
            for (model, status), count in sorted(self._requests.items()):
                lines.append(f"{REQUEST_COUNT}{_labels(model_name=model, status=status)} {count}")
            lines.append(f"# TYPE {REQUEST_LATENCY} histogram")
            for (model, api, entrypoint), counts in sorted(self._latency.items()):
                labels = {"model_name": model, "API": api, "entrypoint": entrypoint}
                cumulative = 0
                for bound, count in zip([*LATENCY_BUCKETS_US, "+Inf"], counts, strict=True):
                    cumulative += count
                    le = bound if bound == "+Inf" else f"{bound:g}"
                    lines.append(f"{REQUEST_LATENCY}_bucket{_labels(**labels, le=le)} {cumulative}")
                total = self._latency_sum[(model, api, entrypoint)]
                lines.append(f"{REQUEST_LATENCY}_sum{_labels(**labels)} {total:g}")
                lines.append(f"{REQUEST_LATENCY}_count{_labels(**labels)} {cumulative}")
            lines.append(f"# TYPE {LOAD_ATTEMPTS} counter")
            for (path, status), count in sorted(self._loads.items()):
                lines.append(f"{LOAD_ATTEMPTS}{_labels(model_path=path, status=status)} {count}")
            lines.append(f"# TYPE {REQUEST_LOG_COUNT} counter")
            for (model, status), count in sorted(self._logged.items()):
                lines.append(
                    f"{REQUEST_LOG_COUNT}{_labels(model_name=model, status=status)} {count}"
                )
        return "\n".join(lines + self._drift_lines()) + "\n"

    def _drift_lines(self) -> list[str]:
        try:  # written whole by make monitor (os.replace), so never half a file
            drift = json.loads(self.drift_file.read_text()) if self.drift_file else None
        except (OSError, ValueError):
            drift = None
        if not drift:
            return []
        lines = []
        for name, key in ((INPUT_DRIFT, "distance"), (f"{INPUT_DRIFT}_threshold", "threshold")):
            lines.append(f"# TYPE {name} gauge")
            for item in drift["features"]:
                labels = _labels(
                    model_name=drift["model_name"],
                    version=drift["version"],
                    feature=item["feature"],
                    measure=item["measure"],
                )
                lines.append(f"{name}{labels} {item[key]}")
        return lines
