"""Kubeflow Pipelines / Vertex AI settings (`make kubeflow`): environment variables or the
runner's flags. A field left empty is derived from the project and bucket, so `--project foo`
moves the bucket, the image, the pipeline root and Dataflow's temp location along with it.

`python -m kubeflow.settings image` prints a setting (the Makefile uses it).
"""

import dataclasses
import os
import sys
from collections.abc import Mapping

from pipeline.settings import SettingsError, knob, print_settings, read_env

BEAM_RUNNERS = ("DataflowRunner", "DirectRunner")


@dataclasses.dataclass(frozen=True)
class KubeflowSettings:
    project: str = knob("GOOGLE_CLOUD_PROJECT", "my-gcp-project")
    region: str = knob("GOOGLE_CLOUD_REGION", "us-central1")
    # Empty: derived (see the properties of the same name without the prefix).
    gcs_bucket: str = knob("GCS_BUCKET", "")
    kubeflow_pipeline_root: str = knob("KUBEFLOW_PIPELINE_ROOT", "")
    kubeflow_data_root: str = knob("KUBEFLOW_DATA_ROOT", "")
    # The TFRecord files under the data root; data in spans: "span-{SPAN}/*" (the newest span).
    data_pattern: str = knob("KUBEFLOW_DATA_PATTERN", "*")
    kubeflow_serving_base: str = knob("KUBEFLOW_SERVING_BASE", "")
    kubeflow_image: str = knob("KUBEFLOW_IMAGE", "")
    # The reviewed schema as the pipeline image holds it (kubeflow/Dockerfile copies pipeline/).
    schema: str = knob("KUBEFLOW_SCHEMA", "/pipeline/pipeline/schema/schema.pbtxt")
    # The Trainer task's resources; an empty GPU type trains on CPU.
    gpu_type: str = knob("TRAINER_GPU_TYPE", "NVIDIA_TESLA_T4")
    gpu_count: int = knob("TRAINER_GPU_COUNT", 1)
    cpu_limit: float = knob("TRAINER_CPU_LIMIT", 8.0)
    memory_limit_gb: float = knob("TRAINER_MEMORY_LIMIT_GB", 30.0)
    # Alternatively train as a Vertex AI Training job (MultiWorkerMirroredStrategy past 1 replica).
    vertex_training: bool = knob("VERTEX_TRAINING", False)
    vertex_machine_type: str = knob("VERTEX_TRAINING_MACHINE_TYPE", "n1-standard-8")
    vertex_replicas: int = knob("VERTEX_TRAINING_REPLICAS", 1)
    # Beam on Dataflow for ExampleGen, StatisticsGen, Transform and Evaluator.
    dataflow_machine_type: str = knob("DATAFLOW_MACHINE_TYPE", "n1-standard-4")
    dataflow_max_workers: int = knob("DATAFLOW_MAX_WORKERS", 10)
    dataflow_temp_location: str = knob("DATAFLOW_TEMP_LOCATION", "")
    # DirectRunner: Beam on the machine that runs a task (make kubeflow-local; clusters without
    # Dataflow); it ignores the Dataflow settings above.
    beam_runner: str = knob("KUBEFLOW_BEAM_RUNNER", "DataflowRunner")

    def __post_init__(self):
        if self.beam_runner not in BEAM_RUNNERS:
            raise SettingsError(
                f"KUBEFLOW_BEAM_RUNNER={self.beam_runner}: the Kubeflow spec runs Beam on "
                + " or ".join(BEAM_RUNNERS)
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> "KubeflowSettings":
        environ = os.environ if environ is None else environ
        return cls(**{**read_env(cls, environ), **overrides})

    @property
    def bucket(self) -> str:
        return self.gcs_bucket or f"{self.project}-mnist-tfx"

    @property
    def pipeline_root(self) -> str:
        return self.kubeflow_pipeline_root or f"gs://{self.bucket}/pipeline_root"

    @property
    def data_root(self) -> str:
        return self.kubeflow_data_root or f"gs://{self.bucket}/data/mnist-sample"

    @property
    def serving_base(self) -> str:
        """Where TF Serving on Kubernetes reads models (serving/kubernetes mounts this path)."""
        return self.kubeflow_serving_base or f"gs://{self.bucket}/serving_model"

    @property
    def image(self) -> str:
        return self.kubeflow_image or f"gcr.io/{self.project}/mnist-tfx-pipeline:latest"

    @property
    def temp_location(self) -> str:
        return self.dataflow_temp_location or f"gs://{self.bucket}/dataflow/tmp"

    def dataflow_beam_pipeline_args(self) -> list[str]:
        """Beam arguments that run every Beam-based component on Dataflow, workers in our image
        (or in the task's own process with the DirectRunner)."""
        if self.beam_runner == "DirectRunner":
            # TFX's KFP v2 entry point hands its own path on to Beam as an argument, and a Beam
            # step with arguments but no worker image packages TFX for remote workers (2 s per
            # step, 49 MB left in the temp folder). The image holds TFX and this project; the
            # DirectRunner runs in the task's process and does not read it.
            return ["--runner=DirectRunner", f"--sdk_container_image={self.image}"]
        return [
            "--runner=DataflowRunner",
            f"--project={self.project}",
            f"--region={self.region}",
            f"--temp_location={self.temp_location}",
            f"--machine_type={self.dataflow_machine_type}",
            f"--max_num_workers={self.dataflow_max_workers}",
            f"--sdk_container_image={self.image}",
            "--experiments=use_runner_v2",
        ]


if __name__ == "__main__":
    sys.exit(print_settings(KubeflowSettings.from_env(), sys.argv[1:]))
