"""TF Serving's deployment files parse, and agree with each other and with the pipeline."""

import re
from pathlib import Path

import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from kubeflow.settings import KubeflowSettings
from pipeline.settings import PROJECT_ROOT, Settings
from serving import TF_SERVING_VERSION

SETTINGS = Settings()
SERVING = PROJECT_ROOT / "serving"
KUBERNETES = SERVING / "kubernetes"
IMAGE = f"tensorflow/serving:{TF_SERVING_VERSION}"
BATCHING_FIELDS = {
    "max_batch_size",
    "batch_timeout_micros",
    "max_enqueued_batches",
    "num_batch_threads",
    "pad_variable_length_inputs",
}


def model_config(text: str) -> model_server_config_pb2.ModelConfig:
    parsed = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    (config,) = parsed.model_config_list.config
    return config


def textproto_fields(text: str) -> set[str]:
    """Top-level field names of a text proto (these protos are not in tensorflow-serving-api)."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    depth, names = 0, set()
    for token in re.findall(r"[A-Za-z_]+(?=\s*[:{])|[{}]", body):
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
        elif depth == 0:
            names.add(token)
    assert depth == 0, "unbalanced braces"
    return names


def compose() -> dict:
    return yaml.safe_load((SERVING / "docker-compose.yml").read_text())


def kubernetes(name: str) -> dict:
    return yaml.safe_load((KUBERNETES / name).read_text())


def test_tf_serving_release_matches_the_locked_tensorflow():
    lock = (PROJECT_ROOT / "requirements.lock").read_text()
    tensorflow = re.search(r"^tensorflow==(\d+\.\d+)\.", lock, re.MULTILINE).group(1)
    assert TF_SERVING_VERSION.startswith(f"{tensorflow}.")


def test_models_config_serves_the_pushed_model_keeping_two_versions():
    config = model_config((SERVING / "models.config").read_text())
    assert config.name == SETTINGS.model_name
    assert config.base_path == f"/models/{SETTINGS.model_name}"
    assert config.model_platform == "tensorflow"
    assert config.model_version_policy.latest.num_versions == 2


def test_batching_and_monitoring_files_use_tf_serving_fields():
    assert textproto_fields((SERVING / "batching_parameters.txt").read_text()) <= BATCHING_FIELDS
    monitoring = (SERVING / "monitoring.config").read_text()
    assert textproto_fields(monitoring) == {"prometheus_config"}
    assert 'path: "/monitoring/prometheus/metrics"' in monitoring


def test_compose_mounts_where_the_pusher_writes():
    services = compose()["services"]
    assert services["tf-serving"]["image"] == IMAGE
    assert services["tf-serving-gpu"]["image"] == f"{IMAGE}-gpu"
    for service in services.values():
        mounts = dict(volume.split(":")[:2] for volume in service["volumes"])
        models_on_host = (SERVING / next(k for k, v in mounts.items() if v == "/models")).resolve()
        default_output_dir = PROJECT_ROOT / "outputs"  # compose knows no OUTPUT_DIR
        pushed_to = Settings(output_dir=default_output_dir).serving_model_dir
        assert models_on_host / SETTINGS.model_name == pushed_to
        for host, container in mounts.items():
            if container.startswith("/config/"):
                assert (SERVING / host).is_file()
                assert any(flag.endswith(container) for flag in service["command"])
        assert {p.rsplit(":", 2)[-1] for p in service["ports"]} == {"8500", "8501"}
        assert all(p.startswith("127.0.0.1:") for p in service["ports"])
    gpu = services["tf-serving-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]


def test_kubernetes_serves_the_kubeflow_pushers_base_path():
    data = kubernetes("configmap.yaml")["data"]
    config = model_config(data["models.config"])
    assert config.name == SETTINGS.model_name
    assert config.base_path == f"{KubeflowSettings().serving_base}/{SETTINGS.model_name}"
    for name in ("batching_parameters.txt", "monitoring.config"):
        file_text = (SERVING / name).read_text()
        assert data[name].strip() in file_text  # the compose files minus their comments


def test_kubernetes_deployments_and_service_agree():
    service = kubernetes("service.yaml")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"grpc": 8500, "rest": 8501}
    configmap_name = kubernetes("configmap.yaml")["metadata"]["name"]
    for name, image in (("deployment.yaml", IMAGE), ("deployment-gpu.yaml", f"{IMAGE}-gpu")):
        pod = kubernetes(name)["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        assert container["image"] == image
        assert set(service["spec"]["selector"].items()) <= set(pod["metadata"]["labels"].items())
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"grpc": 8500, "rest": 8501}
        probe = container["readinessProbe"]["httpGet"]
        assert probe == {"path": f"/v1/models/{SETTINGS.model_name}", "port": "rest"}
        assert container["resources"]["requests"]["cpu"]
        assert pod["spec"]["volumes"][0]["configMap"]["name"] == configmap_name
        assert "--model_config_file=/config/models.config" in container["args"]
    gpu = kubernetes("deployment-gpu.yaml")["spec"]["template"]["spec"]["containers"][0]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_every_deployment_file_is_tested():
    files = {p.name for p in SERVING.iterdir() if p.suffix in {".config", ".txt", ".yml"}}
    files |= {p.name for p in Path(KUBERNETES).iterdir()}
    assert files == {
        "models.config",
        "batching_parameters.txt",
        "monitoring.config",
        "docker-compose.yml",
        "configmap.yaml",
        "deployment.yaml",
        "deployment-gpu.yaml",
        "service.yaml",
    }
