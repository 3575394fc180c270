"""New data arriving in spans: each run ingests the newest span, trains on the latest
TRAIN_SPANS spans, warm-starts from the last blessed model and is compared with it; the answers
people corrected while the model was served become the next span."""

import numpy as np

from components.data.codecs import encode_png
from components.data.sample import load_sample
from pipeline.results import RunSummary, run_summary
from serving.client import RestClient
from tests.bench.serving import ServerProcess
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

    # Served, and corrected by people: the corrected pictures become span 4, which the next run
    # ingests and trains on (serving/corrections.py, pipeline/span_from_requests.py).
    settings = settings_for(output_dir)
    server = ServerProcess(
        settings.serving_model_dir,
        settings.model_name,
        *("--request_log_dir", str(settings.request_log_dir)),
    )
    try:
        with RestClient(server.rest, settings.model_name) as client:
            for digit, name in ((0, "zero"), (1, "one")):
                for index in np.flatnonzero(labels == digit)[300:320]:  # in no span yet
                    answer = client.predict_images([encode_png(pixels[index])])
                    client.correct(answer.request_id, name)
    finally:
        server.stop()
    written = run_pipeline(output_dir, "pipeline.span_from_requests", DATA=str(data))
    assert written.returncode == 0, written.stderr[-2000:]
    assert f"Wrote 40 corrected pictures as {data / 'span-4'}" in written.stdout
    assert sorted(len(list(folder.iterdir())) for folder in (data / "span-4").iterdir()) == [20, 20]
    _, third = run()
    assert third.spans == [3, 4]
