"""Warm-up: a version's recorded requests are replayed before it is served, as TF Serving does;
one that fails fails the load and the version before keeps serving."""

import shutil
import time

import tensorflow as tf
from tensorflow_serving.apis.prediction_log_pb2 import PredictionLog

from serving.model_store import VersionedModel
from trainer.features import DEFAULT_MODEL_NAME, WARMUP_BATCH_SIZES, WARMUP_FILE


def test_warmup_requests_are_replayed_before_a_version_is_served(tmp_path, trained_model_dir):
    base = tmp_path / DEFAULT_MODEL_NAME
    shutil.copytree(trained_model_dir, base)
    model = VersionedModel(DEFAULT_MODEL_NAME, base, poll_interval_s=0.1)
    model.start()
    try:
        assert model.get().warmup_requests == 2 * len(WARMUP_BATCH_SIZES)

        broken = base / "2"
        shutil.copytree(base / "1", broken)
        record = PredictionLog()
        record.predict_log.request.model_spec.signature_name = "no_such_signature"
        with tf.io.TFRecordWriter(str(broken / WARMUP_FILE)) as writer:
            writer.write(record.SerializeToString())
        deadline = time.monotonic() + 60
        while 2 not in model.states() or model.states()[2].error == "":
            assert time.monotonic() < deadline, model.states()
            time.sleep(0.1)
        assert "no_such_signature" in model.states()[2].error
        assert model.get().version == 1  # still served
    finally:
        model.stop()
