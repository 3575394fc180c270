"""Compiles the pipeline for Kubeflow Pipelines v2 and Vertex AI Pipelines (`make kubeflow`).

The pipeline comes from the same `create_pipeline` the local runner uses; only the places
(gs:// paths), the image, the Trainer's resources and Beam on Dataflow differ. Settings come
from the environment (pipeline/settings.py, kubeflow/settings.py) or the flags below. TFX
1.16's KFP v2 compiler refuses InfraValidator (NotImplementedError), so the spec has none.
"""

import argparse
from pathlib import Path

from kfp.pipeline_spec.pipeline_spec_pb2 import PipelineDeploymentConfig
from tfx import v1 as tfx

from kubeflow.settings import KubeflowSettings
from pipeline import image_profile, pipeline
from pipeline.data_source import Ingest
from pipeline.local_runner import run_cli
from pipeline.settings import Settings, SettingsError
from trainer.features import ImageProfile

ResourceSpec = PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec


def trainer_resources(cloud: KubeflowSettings) -> ResourceSpec:
    """CPU, memory and the configured GPU for the Trainer's container."""
    resources = ResourceSpec(cpu_limit=cloud.cpu_limit, memory_limit=cloud.memory_limit_gb)
    if cloud.gpu_type:
        resources.accelerator.type = cloud.gpu_type
        resources.accelerator.count = cloud.gpu_count
    return resources


def vertex_training(cloud: KubeflowSettings) -> dict:
    """custom_config entries that make the Trainer a Vertex AI Training job with GPU workers."""
    machine_spec = {"machine_type": cloud.vertex_machine_type}
    if cloud.gpu_type:
        machine_spec["accelerator_type"] = cloud.gpu_type
        machine_spec["accelerator_count"] = cloud.gpu_count
    worker_pool = {"machine_spec": machine_spec, "container_spec": {"image_uri": cloud.image}}
    # Vertex AI wants the chief alone in the first pool; more replicas go in the second.
    pools = [{**worker_pool, "replica_count": 1}]
    if cloud.vertex_replicas > 1:
        pools.append({**worker_pool, "replica_count": cloud.vertex_replicas - 1})
    extension = tfx.extensions.google_cloud_ai_platform
    return {
        extension.ENABLE_VERTEX_KEY: True,
        extension.VERTEX_REGION_KEY: cloud.region,
        extension.TRAINING_ARGS_KEY: {"project": cloud.project, "worker_pool_specs": pools},
    }


def kubeflow_choices(cloud: KubeflowSettings) -> pipeline.RunnerChoices:
    """Beam on Dataflow, and the Trainer as a container with resources or as a Vertex AI
    Training job."""
    if cloud.vertex_training:
        trainer = {
            "trainer_class": tfx.extensions.google_cloud_ai_platform.Trainer,
            "trainer_custom_config": vertex_training(cloud),
        }
    else:
        trainer = {"trainer_platform_config": trainer_resources(cloud)}
    return pipeline.RunnerChoices(
        beam_pipeline_args=cloud.dataflow_beam_pipeline_args(),
        **trainer,
    )


def create_kubeflow_pipeline(
    settings: Settings,
    cloud: KubeflowSettings,
    ingest: Ingest | None = None,
    profile: ImageProfile | None = None,
) -> tfx.dsl.Pipeline:
    """The pipeline reading `ingest` (default: TFRecords under the data root, by
    KUBEFLOW_DATA_PATTERN) with the image `profile` (default: what IMAGE_PROFILE names, as the
    data is not on this machine: pipeline/image_profile.py). A setting that KFP v2 cannot
    honour is refused here."""
    if settings.train_spans > 1:
        raise SettingsError(
            f"TRAIN_SPANS={settings.train_spans}: the Kubeflow / Vertex AI pipeline trains on "
            "the span each run ingests (KFP v2 resolves one artifact per query, not the latest "
            "spans that passed the gate); set TRAIN_SPANS=1, or train on several spans with "
            "make run."
        )
    decision = image_profile.for_compiled_pipeline(settings)
    if profile is not None:
        decision = image_profile.Decision(profile, "decided on this machine")
    # The cluster's Trainer reads BACKBONE's weights from its own image's Keras cache.
    image_profile.check_backbone(settings, decision, trains_here=False)
    return pipeline.create_pipeline(
        pipeline_name=settings.pipeline_name,
        pipeline_root=cloud.pipeline_root,
        ingest=ingest or Ingest(cloud.data_root, splits={"all": cloud.data_pattern}),
        schema_file=cloud.schema or None,  # none: SchemaGen infers one
        training=settings.training,
        gates=settings.gates,
        serving_model_dir=f"{cloud.serving_base}/{settings.model_name}",
        runner=kubeflow_choices(cloud),
        profile=decision.profile,
        train_spans=settings.train_spans,
        warm_start=settings.warm_start,
        enable_cache=settings.enable_cache,
    )


def compile_pipeline(
    settings: Settings,
    cloud: KubeflowSettings,
    output_path: Path,
    ingest: Ingest | None = None,
    profile: ImageProfile | None = None,
) -> Path:
    """Writes the KFP v2 / Vertex AI pipeline spec JSON."""
    output_path.parent.mkdir(parents=True, exist_ok=True)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=cloud.image),
        output_dir=str(output_path.parent),
        output_filename=output_path.name,
    )
    runner.run(create_kubeflow_pipeline(settings, cloud, ingest, profile), write_out=True)
    return output_path


# Flags override the environment; each sets the KubeflowSettings field it names.
FLAGS = {
    "--project": "project",
    "--region": "region",
    "--pipeline_root": "kubeflow_pipeline_root",
    "--image": "kubeflow_image",
    "--data_root": "kubeflow_data_root",
    "--data_pattern": "data_pattern",
    "--serving_base": "kubeflow_serving_base",
    "--gpu_type": "gpu_type",
    "--gpu_count": "gpu_count",
    "--dataflow_machine_type": "dataflow_machine_type",
    "--dataflow_max_workers": "dataflow_max_workers",
    "--dataflow_temp_location": "dataflow_temp_location",
}


def parse_flags(argv: list[str] | None, settings: Settings) -> tuple[KubeflowSettings, Path]:
    """(the Kubeflow settings: environment, then flags; the spec's path)."""
    from_env = KubeflowSettings.from_env()
    parser = argparse.ArgumentParser(description=__doc__)
    for flag, field in FLAGS.items():
        default = getattr(from_env, field)
        parser.add_argument(flag, dest=field, type=type(default), default=default)
    parser.add_argument("--vertex_training", action="store_true", default=from_env.vertex_training)
    parser.add_argument("--output", type=Path, default=settings.kubeflow_spec_path)
    args = vars(parser.parse_args(argv))
    output = args.pop("output")
    return KubeflowSettings.from_env(**args), output


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    cloud, output = parse_flags(argv, settings)
    print(f"Wrote {compile_pipeline(settings, cloud, output)}")
    return 0


if __name__ == "__main__":
    run_cli(main, exclusive=False)  # compiling touches no run's outputs
