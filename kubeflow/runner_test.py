import json
from pathlib import Path

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from components.candidate_check import TO_JUDGE
from kubeflow import runner
from kubeflow.settings import KubeflowSettings
from pipeline import local_runner
from pipeline.data_source import DataSource
from pipeline.settings import MNIST_SCHEMA, PROJECT_ROOT, Settings, SettingsError

IMAGE = "europe-docker.pkg.dev/test-project/pipelines/mnist-tfx:1.0"
CLOUD = {
    "project": "test-project",
    "region": "europe-west4",
    "kubeflow_pipeline_root": "gs://test-bucket/root",
    "kubeflow_data_root": "gs://test-bucket/data/digits",
    "kubeflow_serving_base": "gs://test-bucket/serving",
    "kubeflow_image": IMAGE,
    "gpu_type": "NVIDIA_L4",
    "gpu_count": 2,
    "dataflow_temp_location": "gs://test-bucket/tmp",
    "dataflow_max_workers": 7,
}
SETTINGS = Settings()
BEAM_COMPONENTS = ["ImportExampleGen", "StatisticsGen", "Transform", "Evaluator"]
RESOLVER_SUFFIX = "_resolver"


def compile_spec(tmp_path, settings: Settings = SETTINGS, **overrides):
    """Compiles with the test settings; returns the JSON and the spec as KFP's protos."""
    cloud = KubeflowSettings(**{**CLOUD, **overrides})
    path = runner.compile_pipeline(settings, cloud, tmp_path / "spec.json")
    return read_spec(path)


def read_spec(path: Path):
    document = json.loads(path.read_text())
    spec = json_format.ParseDict(document["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    return document, spec


def executors(spec: pipeline_spec_pb2.PipelineSpec) -> dict:
    """The deployment spec (a Struct inside PipelineSpec) as PipelineDeploymentConfig."""
    deployment = pipeline_spec_pb2.PipelineDeploymentConfig()
    json_format.ParseDict(json_format.MessageToDict(spec.deployment_spec), deployment)
    return deployment.executors


@pytest.fixture
def compiled(tmp_path):
    return compile_spec(tmp_path)


def node_id(task_name: str) -> str:
    """KFP splits a resolver into one task per resolved channel, `<resolver>-<channel>-...`."""
    return task_name.split("-")[0]


def test_local_and_kubeflow_pipelines_have_the_same_components_edges_and_conditions(
    compiled, tmp_path
):
    _, spec = compiled
    settings = Settings(output_dir=tmp_path)
    settings.sample_root.mkdir(parents=True)
    sample = DataSource(str(settings.sample_root), "tfrecords", {"all": "*"}, schema=MNIST_SCHEMA)
    local = local_runner.create_local_pipeline(settings, sample)
    tasks = spec.root.dag.tasks
    assert {node_id(name) for name in tasks} == {c.id for c in local.components}
    for component in local.components:
        if component.id.endswith(RESOLVER_SUFFIX):
            continue
        kfp_upstream = {node_id(t) for t in tasks[component.id].dependent_tasks}
        assert kfp_upstream == {upstream.id for upstream in component.upstream_nodes}
    # The Evaluator, the serving check and the Pusher run only for a new model, on both.
    conditional = {name for name, task in tasks.items() if task.trigger_policy.condition}
    assert conditional == {"Evaluator", "ServingValidator", "Pusher"}
    condition = tasks["Pusher"].trigger_policy.condition
    assert "CandidateCheck" in condition and f"metadata['{TO_JUDGE}'] == 1.0" in condition


def test_a_setting_kubeflow_cannot_honour_is_refused_before_compiling(tmp_path):
    with pytest.raises(SettingsError, match=r"TRAIN_SPANS=3: the Kubeflow / Vertex AI pipeline"):
        compile_spec(tmp_path, Settings(train_spans=3))
    assert not (tmp_path / "spec.json").exists()


def test_a_beam_runner_the_spec_does_not_name_is_refused():
    with pytest.raises(SettingsError, match="KUBEFLOW_BEAM_RUNNER=PrismRunner: the Kubeflow spec"):
        KubeflowSettings.from_env({"KUBEFLOW_BEAM_RUNNER": "PrismRunner"})


def test_data_in_spans_is_read_by_the_pattern(tmp_path):
    document, _ = compile_spec(tmp_path, data_pattern="span-{SPAN}/*")
    example_gen = json.dumps(document["pipelineSpec"]["root"]["dag"]["tasks"]["ImportExampleGen"])
    assert "span-{SPAN}/*" in example_gen


def containers(spec: pipeline_spec_pb2.PipelineSpec) -> dict:
    return {name: e.container for name, e in executors(spec).items() if e.HasField("container")}


def test_every_executor_runs_in_the_configured_image(compiled):
    _, spec = compiled
    assert len(containers(spec)) == 11, containers(spec).keys()  # all but the resolvers' queries
    assert {c.image for c in containers(spec).values()} == {IMAGE}


def test_trainer_requests_the_configured_gpu_cpu_and_memory(compiled):
    _, spec = compiled
    resources = executors(spec)["Trainer_executor"].container.resources
    assert resources.accelerator.type == "NVIDIA_L4"
    assert resources.accelerator.count == 2
    assert resources.cpu_limit == KubeflowSettings().cpu_limit
    assert resources.memory_limit == KubeflowSettings().memory_limit_gb


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
    assert f"gs://test-bucket/serving/{SETTINGS.model_name}" in pusher
    assert spec.pipeline_info.name == SETTINGS.pipeline_name


def test_vertex_training_runs_the_trainer_as_a_gpu_job(tmp_path):
    document, spec = compile_spec(tmp_path, vertex_training=True, vertex_replicas=3)
    args = list(executors(spec)["Trainer_executor"].container.args)
    assert "tfx.extensions.google_cloud_ai_platform.trainer.executor.GenericExecutor" in args
    trainer_task = json.dumps(document["pipelineSpec"]["root"]["dag"]["tasks"]["Trainer"])
    for fragment in ("worker_pool_specs", "NVIDIA_L4", "europe-west4", IMAGE):
        assert fragment in trainer_task
    assert '\\"replica_count\\": 2' in trainer_task  # chief pool + 2 workers


def test_the_reviewed_schema_is_imported_from_the_image(compiled):
    document, _ = compiled
    import_schema = json.dumps(document["pipelineSpec"]["root"]["dag"]["tasks"]["ImportSchemaGen"])
    assert KubeflowSettings().schema in import_schema
    in_image = Path("/pipeline") / MNIST_SCHEMA.relative_to(PROJECT_ROOT)
    assert KubeflowSettings().schema == str(
        in_image
    )  # kubeflow/Dockerfile: WORKDIR, COPY pipeline/


def test_warm_start_compiles_with_the_built_in_blessed_model_resolver(tmp_path):
    document, spec = compile_spec(tmp_path, Settings(warm_start=True))
    trainer = spec.root.dag.tasks["Trainer"]
    assert "base_model" in trainer.inputs.artifacts
    producer = trainer.inputs.artifacts["base_model"].task_output_artifact.producer_task
    assert producer.startswith("latest_blessed_model_resolver")  # the Evaluator's baseline too


def test_project_flag_moves_every_value_derived_from_it(tmp_path, monkeypatch):
    for variable in (
        "GCS_BUCKET",
        "KUBEFLOW_PIPELINE_ROOT",
        "KUBEFLOW_IMAGE",
        "DATAFLOW_TEMP_LOCATION",
    ):
        monkeypatch.delenv(variable, raising=False)
    path = tmp_path / "spec.json"
    runner.main(["--project", "foo", "--output", str(path)])
    document, spec = read_spec(path)
    text = path.read_text()
    assert KubeflowSettings().project not in text  # the default project is named nowhere
    assert document["runtimeConfig"]["gcsOutputDirectory"] == "gs://foo-mnist-tfx/pipeline_root"
    assert "gs://foo-mnist-tfx/data/mnist-sample" in text
    assert "gs://foo-mnist-tfx/serving_model/" in text
    args = set(executors(spec)["Transform_executor"].container.args)
    assert {"--project=foo", "--temp_location=gs://foo-mnist-tfx/dataflow/tmp"} <= args
    assert {c.image for c in containers(spec).values()} == {"gcr.io/foo/mnist-tfx-pipeline:latest"}


@pytest.mark.parametrize(
    ("flag", "field", "value"),
    [
        (flag, field, "7" if field.endswith(("count", "workers")) else "x-1")
        for flag, field in runner.FLAGS.items()
    ],
)
def test_each_flag_sets_its_field_and_what_is_derived_from_it(flag, field, value):
    cloud, _ = runner.parse_flags([flag, value], SETTINGS)
    assert str(getattr(cloud, field)) == value
    derived = {
        "project": [cloud.bucket, cloud.pipeline_root, cloud.image, cloud.temp_location],
        "region": [a for a in cloud.dataflow_beam_pipeline_args() if a.startswith("--region")],
        "kubeflow_pipeline_root": [cloud.pipeline_root],
        "kubeflow_image": [cloud.image, *cloud.dataflow_beam_pipeline_args()[-2:-1]],
        "kubeflow_data_root": [cloud.data_root],
        "data_pattern": [cloud.data_pattern],
        "kubeflow_serving_base": [cloud.serving_base],
        "gpu_type": [runner.trainer_resources(cloud).accelerator.type],
        "gpu_count": [str(runner.trainer_resources(cloud).accelerator.count)],
        "dataflow_machine_type": [a for a in cloud.dataflow_beam_pipeline_args() if "machine" in a],
        "dataflow_max_workers": [a for a in cloud.dataflow_beam_pipeline_args() if "workers" in a],
        "dataflow_temp_location": [cloud.temp_location],
    }[field]
    assert derived and all(value in item for item in derived), derived


def test_the_serving_check_sits_between_the_evaluator_and_the_pusher(compiled):
    _, spec = compiled
    tasks = spec.root.dag.tasks
    assert "Evaluator" in tasks["ServingValidator"].dependent_tasks
    assert "ServingValidator" in tasks["Pusher"].dependent_tasks
    infra = tasks["Pusher"].inputs.artifacts["infra_blessing"].task_output_artifact
    assert infra.producer_task == "ServingValidator"
