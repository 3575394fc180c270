"""The serving check on a good model, a corrupt one and one without a signature, each served
by the local server in its own process over real gRPC."""

import tensorflow as tf

from components.data.codecs import encode_png
from components.data.sample import load_sample, make_example
from components.serving_check import check_serving, server_command
from trainer.features import SERVING_DEFAULT_SIGNATURE, SERVING_IMAGE_SIGNATURE


def examples(count: int = 8) -> list[bytes]:
    pixels, labels = load_sample(count, seed=5)
    return [
        make_example(encode_png(p), int(label), str(label)).SerializeToString()
        for p, label in zip(pixels, labels, strict=True)
    ]


def test_a_good_model_serves_and_is_measured(trained_model_dir):
    problems, measured = check_serving(str(trained_model_dir / "1"), examples(), server="local")
    assert problems == []
    assert measured["load_seconds"] > 0 and measured["batch_1_p50_ms"] > 0


def test_a_corrupt_model_is_refused_by_its_in_process_load(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"not a SavedModel")
    problems, measured = check_serving(str(tmp_path), examples(), server="local")
    assert len(problems) == 1 and problems[0].startswith("the SavedModel does not load")
    assert measured == {}


def test_a_model_without_the_image_signature_is_refused(trained_model_dir, tmp_path):
    loaded = tf.saved_model.load(str(trained_model_dir / "1"))
    only_default = {SERVING_DEFAULT_SIGNATURE: loaded.signatures[SERVING_DEFAULT_SIGNATURE]}
    tf.saved_model.save(loaded, str(tmp_path / "model"), signatures=only_default)
    problems, _ = check_serving(str(tmp_path / "model"), examples(), server="local")
    assert problems == [
        f"the SavedModel lacks the signature {SERVING_IMAGE_SIGNATURE!r} with input 'images'"
    ]


def test_the_load_time_and_latency_bounds_are_checked(trained_model_dir):
    model_dir = str(trained_model_dir / "1")
    problems, _ = check_serving(model_dir, examples(), server="local", max_load_seconds=0.01)
    assert len(problems) == 1 and "did not become AVAILABLE in time" in problems[0]
    problems, _ = check_serving(model_dir, examples(), server="local", max_latency_ms=0.001)
    assert len(problems) == 1 and problems[0].startswith("batch-1 latency p50")


def test_tf_serving_is_the_server_when_it_is_on_the_path(tmp_path, monkeypatch):
    binary = tmp_path / "tensorflow_model_server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert server_command("auto", "m", tmp_path, 8500)[0] == "tensorflow_model_server"
    assert server_command("local", "m", tmp_path, 8500)[1:3] == ["-m", "serving.server"]
