import json
from pathlib import Path

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from kubeflow import runner
from pipeline import configs, data_source, local_runner
from pipeline.data_source import DataSource

IMAGE = "europe-docker.pkg.dev/test-project/pipelines/mnist-tfx:1.0"
SETTINGS = {
    "GCP_PROJECT": "test-project",
    "GCP_REGION": "europe-west4",
    "KUBEFLOW_PIPELINE_ROOT": "gs://test-bucket/root",
    "KUBEFLOW_DATA_ROOT": "gs://test-bucket/data/digits",
    "KUBEFLOW_SERVING_BASE": "gs://test-bucket/serving",
    "KUBEFLOW_IMAGE": IMAGE,
    "TRAINER_GPU_TYPE": "NVIDIA_L4",
    "TRAINER_GPU_COUNT": 2,
    "DATAFLOW_TEMP_LOCATION": "gs://test-bucket/tmp",
    "DATAFLOW_MAX_WORKERS": 7,
}
BEAM_COMPONENTS = ["ImportExampleGen", "StatisticsGen", "Transform", "Evaluator"]
RESOLVER_SUFFIX = "_resolver"


def compile_spec(tmp_path, monkeypatch, **overrides):
    """Compiles with the test settings; returns the JSON and the spec as KFP's protos."""
    for name, value in {**SETTINGS, **overrides}.items():
        monkeypatch.setattr(configs, name, value)
    path = runner.compile_pipeline(tmp_path / "spec.json")
    document = json.loads(path.read_text())
    spec = json_format.ParseDict(document["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    return document, spec


def executors(spec: pipeline_spec_pb2.PipelineSpec) -> dict:
    """The deployment spec (a Struct inside PipelineSpec) as PipelineDeploymentConfig."""
    deployment = pipeline_spec_pb2.PipelineDeploymentConfig()
    json_format.ParseDict(json_format.MessageToDict(spec.deployment_spec), deployment)
    return deployment.executors


@pytest.fixture
def compiled(tmp_path, monkeypatch):
    return compile_spec(tmp_path, monkeypatch)


def node_id(task_name: str) -> str:
    """KFP splits a resolver into one task per resolved channel, `<resolver>-<channel>-...`."""
    return task_name.split("-")[0]


def test_local_and_kubeflow_pipelines_have_the_same_components_and_edges(compiled, monkeypatch):
    _, spec = compiled
    sample = DataSource(configs.DEFAULT_DATA_ROOT, "tfrecords", {"all": "*"}, configs.MNIST_SCHEMA)
    monkeypatch.setattr(data_source, "resolve", lambda: sample)
    local = local_runner.create_local_pipeline()
    tasks = spec.root.dag.tasks
    kfp_nodes, local_nodes = {node_id(name) for name in tasks}, {c.id for c in local.components}
    # The same components; KFP has the built-in form of the local resolvers but one: the latest
    # validated spans (KFP v2 trains on the run's own span).
    assert local_nodes - kfp_nodes == {"latest_spans_resolver"}
    assert kfp_nodes <= local_nodes
    # Resolvers sit differently: locally they wait for the run's own model and statistics (to
    # leave them out), while KFP v2's built-in ones resolve before.
    for component in local.components:
        if component.id.endswith(RESOLVER_SUFFIX):
            continue
        kfp_upstream = {node_id(t) for t in tasks[component.id].dependent_tasks}
        local_upstream = {upstream.id for upstream in component.upstream_nodes}
        assert {n for n in kfp_upstream if not n.endswith(RESOLVER_SUFFIX)} == {
            n for n in local_upstream if not n.endswith(RESOLVER_SUFFIX)
        }


def test_every_executor_runs_in_the_configured_image(compiled):
    _, spec = compiled
    containers = {
        name: e.container for name, e in executors(spec).items() if e.HasField("container")
    }
    assert len(containers) == 9, containers.keys()  # all but the resolvers' three queries
    assert {c.image for c in containers.values()} == {IMAGE}


def test_trainer_requests_the_configured_gpu_cpu_and_memory(compiled):
    _, spec = compiled
    resources = executors(spec)["Trainer_executor"].container.resources
    assert resources.accelerator.type == "NVIDIA_L4"
    assert resources.accelerator.count == 2
    assert resources.cpu_limit == configs.TRAINER_CPU_LIMIT
    assert resources.memory_limit == configs.TRAINER_MEMORY_LIMIT_GB


def test_dataflow_arguments_reach_every_beam_component(compiled):
    _, spec = compiled
    expected = {
        "--runner=DataflowRunner",
        "--project=test-project",
        "--region=europe-west4",
        "--temp_location=gs://test-bucket/tmp",
        "--max_num_workers=7",
        f"--sdk_container_image={IMAGE}",
    }
    for name in BEAM_COMPONENTS:
        args = executors(spec)[f"{name}_executor"].container.args
        assert expected <= set(args), name


def test_pipeline_root_data_and_serving_paths_are_the_configured_ones(compiled):
    document, spec = compiled
    assert document["runtimeConfig"]["gcsOutputDirectory"] == "gs://test-bucket/root"
    example_gen = json.dumps(document["pipelineSpec"]["components"]["ImportExampleGen"])
    assert "gs://test-bucket/data/digits" in json.dumps(document["pipelineSpec"])
    assert "input_base" in example_gen
    pusher = json.dumps(document["pipelineSpec"]["root"]["dag"]["tasks"]["Pusher"])
    assert f"gs://test-bucket/serving/{configs.MODEL_NAME}" in pusher
    assert spec.pipeline_info.name == configs.PIPELINE_NAME


def test_vertex_training_runs_the_trainer_as_a_gpu_job(tmp_path, monkeypatch):
    document, spec = compile_spec(
        tmp_path, monkeypatch, VERTEX_TRAINING=True, VERTEX_TRAINING_REPLICAS=3
    )
    args = list(executors(spec)["Trainer_executor"].container.args)
    assert "tfx.extensions.google_cloud_ai_platform.trainer.executor.GenericExecutor" in args
    trainer_task = json.dumps(document["pipelineSpec"]["root"]["dag"]["tasks"]["Trainer"])
    for fragment in ("worker_pool_specs", "NVIDIA_L4", "europe-west4", IMAGE):
        assert fragment in trainer_task
    assert '\\"replica_count\\": 2' in trainer_task  # chief pool + 2 workers


def test_the_reviewed_schema_is_imported_from_the_image(compiled):
    document, _ = compiled
    import_schema = json.dumps(document["pipelineSpec"]["root"]["dag"]["tasks"]["ImportSchemaGen"])
    assert configs.KUBEFLOW_SCHEMA in import_schema
    in_image = Path("/pipeline") / configs.MNIST_SCHEMA.relative_to(configs.PROJECT_ROOT)
    assert configs.KUBEFLOW_SCHEMA == str(in_image)  # kubeflow/Dockerfile: WORKDIR, COPY pipeline/


def test_warm_start_compiles_with_the_built_in_blessed_model_resolver(tmp_path, monkeypatch):
    monkeypatch.setattr(configs, "WARM_START", True)
    document, spec = compile_spec(tmp_path, monkeypatch)
    trainer = spec.root.dag.tasks["Trainer"]
    assert "base_model" in trainer.inputs.artifacts
    producer = trainer.inputs.artifacts["base_model"].task_output_artifact.producer_task
    assert producer.startswith("warm_start_model_resolver")
