"""Compiles the pipeline for Kubeflow Pipelines v2 and Vertex AI Pipelines (`make kubeflow`).

The pipeline comes from the same `create_pipeline` the local runner uses; only the places
(gs:// paths), the image, the Trainer's resources and Beam on Dataflow differ. Settings come
from `pipeline/configs.py` (environment variables) or the flags below. TFX 1.16's KFP v2
compiler refuses InfraValidator (NotImplementedError), so the spec has none.
"""

import argparse
from pathlib import Path

from tfx import v1 as tfx

from pipeline import configs, pipeline
from pipeline.pipeline import ResourceSpec


def trainer_resources() -> ResourceSpec:
    """CPU, memory and the configured GPU for the Trainer's container."""
    resources = ResourceSpec(
        cpu_limit=configs.TRAINER_CPU_LIMIT, memory_limit=configs.TRAINER_MEMORY_LIMIT_GB
    )
    if configs.TRAINER_GPU_TYPE:
        resources.accelerator.type = configs.TRAINER_GPU_TYPE
        resources.accelerator.count = configs.TRAINER_GPU_COUNT
    return resources


def vertex_training() -> dict:
    """custom_config entries that make the Trainer a Vertex AI Training job with GPU workers."""
    machine_spec = {"machine_type": configs.VERTEX_TRAINING_MACHINE_TYPE}
    if configs.TRAINER_GPU_TYPE:
        machine_spec["accelerator_type"] = configs.TRAINER_GPU_TYPE
        machine_spec["accelerator_count"] = configs.TRAINER_GPU_COUNT
    worker_pool = {
        "machine_spec": machine_spec,
        "container_spec": {"image_uri": configs.KUBEFLOW_IMAGE},
    }
    # Vertex AI wants the chief alone in the first pool; more replicas go in the second.
    pools = [{**worker_pool, "replica_count": 1}]
    if configs.VERTEX_TRAINING_REPLICAS > 1:
        pools.append({**worker_pool, "replica_count": configs.VERTEX_TRAINING_REPLICAS - 1})
    extension = tfx.extensions.google_cloud_ai_platform
    return {
        extension.ENABLE_VERTEX_KEY: True,
        extension.VERTEX_REGION_KEY: configs.GCP_REGION,
        extension.TRAINING_ARGS_KEY: {
            "project": configs.GCP_PROJECT,
            "worker_pool_specs": pools,
        },
    }


def create_kubeflow_pipeline() -> tfx.dsl.Pipeline:
    return pipeline.create_pipeline(
        pipeline_root=configs.KUBEFLOW_PIPELINE_ROOT,
        example_gen_args=configs.example_gen_args(configs.KUBEFLOW_DATA_ROOT),
        schema_file=configs.KUBEFLOW_SCHEMA,
        serving_model_dir=f"{configs.KUBEFLOW_SERVING_BASE}/{configs.MODEL_NAME}",
        beam_pipeline_args=configs.dataflow_beam_pipeline_args(),
        trainer_resources=None if configs.VERTEX_TRAINING else trainer_resources(),
        vertex_training=vertex_training() if configs.VERTEX_TRAINING else None,
        builtin_resolvers_only=True,
        **configs.pipeline_args(),
    )


def compile_pipeline(output_path: Path) -> Path:
    """Writes the KFP v2 / Vertex AI pipeline spec JSON."""
    output_path.parent.mkdir(parents=True, exist_ok=True)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=configs.KUBEFLOW_IMAGE
        ),
        output_dir=str(output_path.parent),
        output_filename=output_path.name,
    )
    runner.run(create_kubeflow_pipeline(), write_out=True)
    return output_path


# Flags override the environment; each maps to the configs variable of the same name.
FLAGS = {
    "--project": "GCP_PROJECT",
    "--region": "GCP_REGION",
    "--pipeline_root": "KUBEFLOW_PIPELINE_ROOT",
    "--image": "KUBEFLOW_IMAGE",
    "--data_root": "KUBEFLOW_DATA_ROOT",
    "--serving_base": "KUBEFLOW_SERVING_BASE",
    "--gpu_type": "TRAINER_GPU_TYPE",
    "--gpu_count": "TRAINER_GPU_COUNT",
    "--dataflow_machine_type": "DATAFLOW_MACHINE_TYPE",
    "--dataflow_max_workers": "DATAFLOW_MAX_WORKERS",
    "--dataflow_temp_location": "DATAFLOW_TEMP_LOCATION",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for flag, name in FLAGS.items():
        default = getattr(configs, name)
        parser.add_argument(flag, type=type(default), default=default, help=f"default: {default}")
    parser.add_argument("--vertex_training", action="store_true", default=configs.VERTEX_TRAINING)
    parser.add_argument("--output", type=Path, default=configs.KUBEFLOW_SPEC_PATH)
    args = parser.parse_args()
    for flag, name in FLAGS.items():
        setattr(configs, name, getattr(args, flag.lstrip("-")))
    configs.VERTEX_TRAINING = args.vertex_training
    print(f"Wrote {compile_pipeline(args.output)}")


if __name__ == "__main__":
    main()
