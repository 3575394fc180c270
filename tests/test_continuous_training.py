"""New data arriving in spans: each run ingests the newest span, trains on the latest
TRAIN_SPANS spans, warm-starts from the last blessed model and is compared with it."""

import numpy as np

from components.data.sample import load_sample
from pipeline.results import RunSummary, run_summary
from tests.pipeline_runs import run_pipeline, settings_for, write_classes

CONTINUOUS = {
    "TRAIN_SPANS": "2",
    "WARM_START": "1",
    "EPOCHS": "3",
    "EVAL_MAX_ACCURACY_DROP": "0.05",  # this test is about the spans, not the regression gate
}


def test_training_rolls_over_the_latest_spans_and_warm_starts(tmp_path):
    pixels, labels = load_sample(5000, seed=9)
    data, output_dir = tmp_path / "data", tmp_path / "outputs"

    def add_span(span: int) -> None:
        """100 new zeros and 100 new ones."""
        fresh = np.concatenate(
            [np.flatnonzero(labels == d)[100 * (span - 1) : 100 * span] for d in (0, 1)]
        )
        write_classes(
            data / f"span-{span}", pixels[fresh], labels[fresh], {"zero": 100, "one": 100}
        )

    def run() -> tuple[str, RunSummary]:
        completed = run_pipeline(output_dir, DATA=str(data), **CONTINUOUS)
        assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
        return completed.stdout, run_summary(settings_for(output_dir).metadata_path)

    add_span(1)
    add_span(2)  # two spans at the first run: span 1 is ingested and validated first
    first_output, first = run()
    assert "Ingesting and validating span 1 first" in first_output
    assert first.spans == [1, 2] and first.warm_start_model is None
    assert first.blessed and first.accuracy_change is None

    add_span(3)
    second_output, second = run()
    assert "Ingesting and validating" not in second_output
    assert second.spans == [2, 3]  # TRAIN_SPANS=2: span 1 rolled out
    assert "Trained and evaluated on spans 2, 3." in second_output
    # The last blessed model is both the warm start and the Evaluator's baseline.
    assert second.warm_start_model == first.artifact_uris["Trainer.Model"]
    assert second.accuracy_change is not None
    assert second.blessed and second.accuracy >= 0.9
