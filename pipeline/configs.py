"""Every knob of the pipeline, each overridable from the environment (e.g. `EPOCHS=5 make run`)."""

import hashlib
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _env(name: str, default):
    """The environment's value for `name`, converted to the default's type."""
    value = os.environ.get(name)
    return default if value is None or value == "" else type(default)(value)


PIPELINE_NAME = _env("PIPELINE_NAME", "mnist-cnn-pipeline")  # KFP v2 allows [a-z0-9-]
MODEL_NAME = _env("MODEL_NAME", "mnist_cnn")  # TF Serving's model name

# Everything a run writes lives under OUTPUT_DIR.
OUTPUT_DIR = Path(_env("OUTPUT_DIR", str(PROJECT_ROOT / "outputs"))).resolve()
PIPELINE_ROOT = OUTPUT_DIR / "tfx" / PIPELINE_NAME
METADATA_PATH = OUTPUT_DIR / "metadata" / f"{PIPELINE_NAME}.sqlite"
SERVING_MODEL_DIR = OUTPUT_DIR / "serving_model" / MODEL_NAME  # <base>/<model>/<version>/
LOG_DIR = OUTPUT_DIR / "logs"
REPORT_DIR = OUTPUT_DIR / "report"

# What to train on (see pipeline/data_source.py): "mnist-sample" (offline default), "mnist"
# (the full 70,000 digits, downloaded), or a folder of class sub-folders or of IDX files.
DATA = _env("DATA", "mnist-sample")
# An external labelled test set (IDX folder, class-folder tree or TFRecord files) that replaces
# the data's own test split: the Evaluator's gate and every printed accuracy read it.
TEST_DATA = _env("TEST_DATA", "")
MAX_BAD_IMAGE_FRACTION = _env("MAX_BAD_IMAGE_FRACTION", 0.01)  # undecodable images tolerated
# The validation gate: largest L-infinity change of the class distribution against the
# previous span's statistics (the previous run's, when the data has no spans) before the run
# stops.
MAX_LABEL_DRIFT = _env("MAX_LABEL_DRIFT", 0.15)
# The reviewed schema every run's data is checked against (ImportSchemaGen). "" picks the
# checked-in MNIST_SCHEMA for digits (the sample, full MNIST, IDX folders) and lets SchemaGen
# infer one for class folders; "infer" always infers. `make schema DATA=...` writes one to
# review for a new data set.
SCHEMA = _env("SCHEMA", "")
MNIST_SCHEMA = PROJECT_ROOT / "pipeline" / "schema" / "schema.pbtxt"
SCHEMA_OUTPUT_DIR = OUTPUT_DIR / "schema"  # where `make schema` writes
# Continuous training: data that arrives in spans (`<DATA>/span-<N>/...`) trains on the latest
# TRAIN_SPANS spans; each run ingests the newest. WARM_START=1 starts the network from the
# last blessed model's weights instead of from scratch.
TRAIN_SPANS = _env("TRAIN_SPANS", 3)
WARM_START = _env("WARM_START", 0) == 1
MNIST_MIRROR = _env("MNIST_MIRROR", "https://storage.googleapis.com/cvdf-datasets/mnist/")
# The sample: TFRecord files of raw tf.Examples (`image` bytes, `label`, `class_name`).
DEFAULT_DATA_ROOT = OUTPUT_DIR / "data" / "mnist-sample"
DATA_ROOT = Path(_env("DATA_ROOT", str(DEFAULT_DATA_ROOT))).resolve()
SAMPLE_SIZE = _env("SAMPLE_SIZE", 5000)  # digits of the offline sample to write (at most 5,000)
DATA_SEED = _env("DATA_SEED", 0)  # shuffles the class-sorted sample

# Trainer hyperparameters (see trainer.train.TrainingConfig).
EPOCHS = _env("EPOCHS", 20)
BATCH_SIZE = _env("BATCH_SIZE", 32)  # per replica
LEARNING_RATE = _env("LEARNING_RATE", 2e-3)
EARLY_STOPPING_PATIENCE = _env("EARLY_STOPPING_PATIENCE", 5)
ENSEMBLE_MEMBERS = _env("ENSEMBLE_MEMBERS", 3)  # networks averaged inside the model
LABEL_SMOOTHING = _env("LABEL_SMOOTHING", 0.1)
TRAINING_SEED = _env("TRAINING_SEED", 42)
JIT_COMPILE = _env("JIT_COMPILE", 0) == 1  # XLA for the training step; for GPUs

# Evaluator gate, on the test split: an absolute accuracy floor, and no significant regression
# against the last blessed model (paired one-sided McNemar test on the same test examples,
# refused when p < EVAL_REGRESSION_ALPHA; components/paired_regression.py).
EVAL_ACCURACY_THRESHOLD = _env("EVAL_ACCURACY_THRESHOLD", 0.97)
EVAL_REGRESSION_ALPHA = _env("EVAL_REGRESSION_ALPHA", 0.05)

# Beam. The DirectRunner in `in_memory` mode beats `multi_processing` on the 5,000-image
# sample (worker start-up outweighs the parallelism); `multi_processing` pays off on big data.
BEAM_DIRECT_RUNNING_MODE = _env("BEAM_DIRECT_RUNNING_MODE", "in_memory")
BEAM_DIRECT_NUM_WORKERS = _env("BEAM_DIRECT_NUM_WORKERS", 0)  # 0: one per CPU core

ENABLE_CACHE = _env("ENABLE_CACHE", 1) == 1

# TF Serving release matching TF 2.16: serving manifests and the InfraValidator use it.
TF_SERVING_VERSION = _env("TF_SERVING_VERSION", "2.16.1")

# Kubeflow Pipelines / Vertex AI (`make kubeflow`); nothing here is used by local runs.
GCP_PROJECT = _env("GOOGLE_CLOUD_PROJECT", "my-gcp-project")
GCP_REGION = _env("GOOGLE_CLOUD_REGION", "us-central1")
GCS_BUCKET = _env("GCS_BUCKET", f"{GCP_PROJECT}-mnist-tfx")
KUBEFLOW_PIPELINE_ROOT = _env("KUBEFLOW_PIPELINE_ROOT", f"gs://{GCS_BUCKET}/pipeline_root")
KUBEFLOW_DATA_ROOT = _env("KUBEFLOW_DATA_ROOT", f"gs://{GCS_BUCKET}/data/mnist-sample")
# The reviewed schema as the pipeline image holds it (kubeflow/Dockerfile copies pipeline/).
KUBEFLOW_SCHEMA = _env("KUBEFLOW_SCHEMA", "/pipeline/pipeline/schema/schema.pbtxt")
# Where TF Serving on Kubernetes reads models (serving/kubernetes mounts this bucket path).
KUBEFLOW_SERVING_BASE = _env("KUBEFLOW_SERVING_BASE", f"gs://{GCS_BUCKET}/serving_model")
KUBEFLOW_IMAGE = _env("KUBEFLOW_IMAGE", f"gcr.io/{GCP_PROJECT}/mnist-tfx-pipeline:latest")
KUBEFLOW_SPEC_PATH = OUTPUT_DIR / "kubeflow" / f"{PIPELINE_NAME}.json"
# The Trainer task's resources on Kubeflow / Vertex AI Pipelines.
TRAINER_GPU_TYPE = _env("TRAINER_GPU_TYPE", "NVIDIA_TESLA_T4")  # "" trains on CPU
TRAINER_GPU_COUNT = _env("TRAINER_GPU_COUNT", 1)
TRAINER_CPU_LIMIT = _env("TRAINER_CPU_LIMIT", 8.0)
TRAINER_MEMORY_LIMIT_GB = _env("TRAINER_MEMORY_LIMIT_GB", 30.0)
# Alternatively train as a Vertex AI Training job (MultiWorkerMirroredStrategy past 1 replica).
VERTEX_TRAINING = _env("VERTEX_TRAINING", 0) == 1
VERTEX_TRAINING_MACHINE_TYPE = _env("VERTEX_TRAINING_MACHINE_TYPE", "n1-standard-8")
VERTEX_TRAINING_REPLICAS = _env("VERTEX_TRAINING_REPLICAS", 1)
# Beam on Dataflow for ExampleGen, StatisticsGen, Transform and Evaluator.
DATAFLOW_MACHINE_TYPE = _env("DATAFLOW_MACHINE_TYPE", "n1-standard-4")
DATAFLOW_MAX_WORKERS = _env("DATAFLOW_MAX_WORKERS", 10)
DATAFLOW_TEMP_LOCATION = _env("DATAFLOW_TEMP_LOCATION", f"gs://{GCS_BUCKET}/dataflow/tmp")

PREPROCESSING_FN = "trainer.preprocessing.preprocessing_fn"
RUN_FN = "trainer.train.run_fn"


def beam_pipeline_args() -> list[str]:
    args = [f"--direct_running_mode={BEAM_DIRECT_RUNNING_MODE}"]
    if BEAM_DIRECT_RUNNING_MODE != "in_memory":  # in_memory always runs one worker
        args.append(f"--direct_num_workers={BEAM_DIRECT_NUM_WORKERS}")
    return args


def dataflow_beam_pipeline_args() -> list[str]:
    """Beam arguments that run every Beam-based component on Dataflow, workers in our image."""
    return [
        "--runner=DataflowRunner",
        f"--project={GCP_PROJECT}",
        f"--region={GCP_REGION}",
        f"--temp_location={DATAFLOW_TEMP_LOCATION}",
        f"--machine_type={DATAFLOW_MACHINE_TYPE}",
        f"--max_num_workers={DATAFLOW_MAX_WORKERS}",
        f"--sdk_container_image={KUBEFLOW_IMAGE}",
        "--experiments=use_runner_v2",
    ]


def pipeline_args() -> dict:
    """create_pipeline's arguments that are the same for every runner."""
    return {
        "pipeline_name": PIPELINE_NAME,
        "preprocessing_fn": PREPROCESSING_FN,
        "run_fn": RUN_FN,
        "training_config": training_config(),
        "eval_accuracy_threshold": EVAL_ACCURACY_THRESHOLD,
        "eval_regression_alpha": EVAL_REGRESSION_ALPHA,
        "max_label_drift": MAX_LABEL_DRIFT,
        "train_spans": TRAIN_SPANS,
        "warm_start": WARM_START,
        "enable_cache": ENABLE_CACHE,
    }


def example_gen_args(
    data_root: str,
    data_kind: str = "tfrecords",
    input_splits: dict[str, str] | None = None,
    span: int | None = None,
) -> dict:
    """create_example_gen's arguments: where and what the data is, its splits, and which span
    to read (None: the newest)."""
    return {
        "span": span,
        "data_root": data_root,
        "data_kind": data_kind,
        "input_splits": input_splits,
        "max_bad_image_fraction": MAX_BAD_IMAGE_FRACTION,
    }


def training_config() -> dict:
    """The Trainer's custom_config: hyperparameters plus the model code's digest."""
    return {
        "epochs": EPOCHS,
        "batch_size": BATCH_SIZE,
        "learning_rate": LEARNING_RATE,
        "early_stopping_patience": EARLY_STOPPING_PATIENCE,
        "seed": TRAINING_SEED,
        "ensemble_members": ENSEMBLE_MEMBERS,
        "label_smoothing": LABEL_SMOOTHING,
        "jit_compile": JIT_COMPILE,
        "code_version": trainer_code_version(),
    }


def trainer_code_version() -> str:
    """Digest of `trainer/`'s source. Transform and Trainer name their functions by module path,
    which TFX's cache cannot see into; this digest in their config makes an edit re-run them."""
    digest = hashlib.sha256()
    for path in sorted((PROJECT_ROOT / "trainer").glob("*.py")):
        if not path.name.endswith("_test.py"):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]
