"""kubeflow/Dockerfile, the image every Kubeflow / Vertex AI task runs in: pinned as the lock
and TF Serving are, and holding the module files the pipeline names."""

import re

from pipeline.settings import PREPROCESSING_FN, PROJECT_ROOT, RUN_FN
from serving import TF_SERVING_VERSION

DOCKERFILE = PROJECT_ROOT / "kubeflow" / "Dockerfile"


def locked_versions() -> dict[str, str]:
    pins = {}
    for line in (PROJECT_ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_base_image_is_the_locked_tfx_release():
    base = re.search(r"^FROM tensorflow/tfx:(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert base and base.group(1) == locked_versions()["tfx"]


def test_every_pinned_package_matches_the_lock():
    pins = re.findall(r'"([A-Za-z0-9_.-]+)(?:\[[a-z-]+\])?==([^"]+)"', DOCKERFILE.read_text())
    assert {name for name, _ in pins} >= {"tensorflow", "tf-keras", "apache-beam", "mlxtend"}
    locked = locked_versions()
    assert {name: version for name, version in pins} == {name: locked[name] for name, _ in pins}


def test_image_carries_the_code_the_components_import():
    text = DOCKERFILE.read_text()
    for package in ("components", "pipeline", "serving", "trainer"):
        assert f"COPY {package}/ {package}/" in text
    assert "ENV PYTHONPATH=/pipeline" in text
    assert RUN_FN.split(".")[0] == PREPROCESSING_FN.split(".")[0] == "trainer"


def test_image_installs_tf_serving_matching_tensorflow():
    text = DOCKERFILE.read_text()
    assert "http://storage.googleapis.com/tensorflow-serving-apt stable" in text
    pinned = re.search(r"tensorflow-model-server=(\S+)", text)
    assert pinned and pinned.group(1) == TF_SERVING_VERSION
    tensorflow = locked_versions()["tensorflow"]
    assert TF_SERVING_VERSION.split(".")[:2] == tensorflow.split(".")[:2]
