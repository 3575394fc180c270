"""Server-side batching: concurrent requests run together and each gets its own answers; a bad
picture fails only its request; a full queue refuses; TF Serving's parameters file is read."""

import shutil
import threading
from concurrent import futures

import numpy as np
import pytest

from components.data.codecs import encode_png
from components.data.sample import load_sample
from pipeline.settings import PROJECT_ROOT
from serving.batching import (
    Batcher,
    BatchingParameters,
    BatchQueueFull,
    read_batching_parameters,
)
from serving.core import ServingCore, ServingError
from serving.model_registry import ModelRegistry
from serving.model_store import VersionedModel
from trainer.features import (
    CLASS_ID_OUTPUT,
    DEFAULT_MODEL_NAME,
    IMAGES_INPUT,
    PROBABILITIES_OUTPUT,
    SERVING_IMAGE_SIGNATURE,
)


def lengths(calls: list[int]):
    """A model whose answer is each value's length; it records each call's batch size."""

    def run(inputs: dict[str, list[bytes]]) -> dict[str, np.ndarray]:
        (values,) = inputs.values()
        if b"bad" in values:
            raise ValueError("a bad value in the batch")
        calls.append(len(values))
        return {"length": np.array([len(v) for v in values])}

    return run


def test_concurrent_requests_run_together_and_each_gets_its_own_answers():
    calls: list[int] = []
    batcher = Batcher(BatchingParameters(max_batch_size=8, batch_timeout_micros=50_000))
    requests = [[b"x" * (i + 1)] for i in range(16)] + [[b"y" * 20, b"z" * 21]]
    with futures.ThreadPoolExecutor(len(requests)) as pool:
        answers = list(
            pool.map(
                lambda values: batcher.run(("v1", "s"), lengths(calls), {"in": values}), requests
            )
        )
    batcher.stop()
    assert [list(a["length"]) for a in answers] == [[len(v) for v in r] for r in requests]
    assert sum(calls) == 18 and len(calls) < len(requests) and max(calls) <= 8


def test_a_bad_value_fails_only_its_own_request():
    calls: list[int] = []
    batcher = Batcher(BatchingParameters(max_batch_size=4, batch_timeout_micros=50_000))
    with futures.ThreadPoolExecutor(4) as pool:
        results = [
            pool.submit(batcher.run, ("v1", "s"), lengths(calls), {"in": [value]})
            for value in (b"good", b"bad", b"fine", b"ok")
        ]
    batcher.stop()
    assert isinstance(results[1].exception(), ValueError)
    assert [list(results[i].result()["length"]) for i in (0, 2, 3)] == [[4], [4], [2]]


def test_a_full_queue_refuses_as_tf_serving_does():
    started, release = threading.Event(), threading.Event()

    def slow(inputs):
        started.set()
        release.wait(10)
        return {"length": np.zeros(len(inputs["in"]))}

    parameters = BatchingParameters(
        max_batch_size=2, batch_timeout_micros=0, num_batch_threads=1, max_enqueued_batches=1
    )
    batcher = Batcher(parameters)
    with futures.ThreadPoolExecutor(3) as pool:
        running = [pool.submit(batcher.run, ("v1", "s"), slow, {"in": [b"a"]})]
        started.wait(10)  # the one thread is busy: what comes now waits
        running += [pool.submit(batcher.run, ("v1", "s"), slow, {"in": [b"a"]}) for _ in "ab"]
        while sum(len(queue) for queue in batcher._queues.values()) < 2:
            threading.Event().wait(0.01)
        with pytest.raises(BatchQueueFull, match="batch scheduling queue .* is full"):
            batcher.run(("v1", "s"), slow, {"in": [b"a"]})
        release.set()
        assert all(len(r.result()["length"]) == 1 for r in running)
    batcher.stop()


def test_tf_servings_parameters_file_is_read_and_a_wrong_line_named(tmp_path):
    shipped = read_batching_parameters(PROJECT_ROOT / "serving" / "batching_parameters.txt")
    assert shipped == BatchingParameters(64, 2000, 1, 100)
    wrong = tmp_path / "batching.txt"
    wrong.write_text("max_batch_size { value: 8 }\nmax_batch_sise { value: 9 }\n")
    with pytest.raises(ValueError, match="batching.txt:2: not a batching parameter"):
        read_batching_parameters(wrong)


def test_batched_answers_equal_the_unbatched_ones(tmp_path, trained_model_dir):
    base = tmp_path / DEFAULT_MODEL_NAME
    shutil.copytree(trained_model_dir, base)
    model = VersionedModel(DEFAULT_MODEL_NAME, base)
    model.start()
    pngs = [encode_png(p) for p in load_sample(24, seed=8)[0]] + [b"\x89PNG\r\n\x1a\n" + b"\0" * 30]
    batcher = Batcher(BatchingParameters(max_batch_size=8, batch_timeout_micros=20_000))
    models = ModelRegistry.of(model)
    batched, alone = ServingCore(models, batcher=batcher), ServingCore(models)

    def answer(core: ServingCore, png: bytes):
        try:
            loaded = core.version(DEFAULT_MODEL_NAME, None)
            _, outputs, _ = core.predict(
                DEFAULT_MODEL_NAME, loaded, SERVING_IMAGE_SIGNATURE, {IMAGES_INPUT: [png]}
            )
        except ServingError as error:
            return str(error)
        return int(outputs[CLASS_ID_OUTPUT][0]), outputs[PROBABILITIES_OUTPUT][0].round(4).tolist()

    try:
        with futures.ThreadPoolExecutor(len(pngs)) as pool:
            together = list(pool.map(lambda png: answer(batched, png), pngs))
        assert together == [answer(alone, png) for png in pngs]
        assert "images[0]" in together[-1]  # the bad picture named as in its own request
    finally:
        batcher.stop()
        model.stop()
