"""New data arriving in spans: each run ingests the newest span, trains on the latest
TRAIN_SPANS spans, warm-starts from the last blessed model and is compared with it."""

import numpy as np

from components.mnist_sample import load_sample
from pipeline import configs
from pipeline.results import latest_run_summary
from tests.pipeline_runs import run_pipeline, under, write_classes

CONTINUOUS = {
    "TRAIN_SPANS": "2",
    "WARM_START": "1",
    "EPOCHS": "3",
    "EVAL_MAX_ACCURACY_DROP": "0.05",  # this test is about the spans, not the regression gate
}


def test_training_rolls_over_the_latest_spans_and_warm_starts(tmp_path):
    pixels, labels = load_sample(5000, seed=9)
    data, output_dir = tmp_path / "data", tmp_path / "outputs"
    summaries = []
    for span in (1, 2, 3):
        # Each span: 100 new zeros and 100 new ones.
        fresh = np.concatenate(
            [np.flatnonzero(labels == d)[100 * (span - 1) : 100 * span] for d in (0, 1)]
        )
        write_classes(
            data / f"span-{span}", pixels[fresh], labels[fresh], {"zero": 100, "one": 100}
        )
        completed = run_pipeline(output_dir, DATA=str(data), **CONTINUOUS)
        assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
        summaries.append(latest_run_summary(under(output_dir, configs.METADATA_PATH)))

    first, second, third = summaries
    assert [s.spans for s in summaries] == [[1], [1, 2], [2, 3]]
    assert "Trained and evaluated on spans 2, 3." in completed.stdout
    assert first.warm_start_model is None and first.accuracy_change is None
    for before, after in ((first, second), (second, third)):
        # The last blessed model is both the warm start and the Evaluator's baseline.
        assert before.blessed
        assert after.warm_start_model == before.artifact_uris["Trainer.Model"]
        assert after.accuracy_change is not None
    assert second.eval_examples > first.eval_examples  # two spans' eval splits
    assert third.blessed and third.accuracy >= 0.9  # two spans and two warm starts in
