"""Every knob of the pipeline, each overridable from the environment (e.g. `EPOCHS=5 make run`)."""

import hashlib
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _env(name: str, default):
    """The environment's value for `name`, converted to the default's type."""
    value = os.environ.get(name)
    return default if value is None or value == "" else type(default)(value)


PIPELINE_NAME = _env("PIPELINE_NAME", "mnist_cnn_pipeline")
MODEL_NAME = _env("MODEL_NAME", "mnist_cnn")  # TF Serving's model name

# Everything a run writes lives under OUTPUT_DIR.
OUTPUT_DIR = Path(_env("OUTPUT_DIR", str(PROJECT_ROOT / "outputs"))).resolve()
PIPELINE_ROOT = OUTPUT_DIR / "tfx" / PIPELINE_NAME
METADATA_PATH = OUTPUT_DIR / "metadata" / f"{PIPELINE_NAME}.sqlite"
SERVING_MODEL_DIR = OUTPUT_DIR / "serving_model" / MODEL_NAME  # <base>/<model>/<version>/
LOG_DIR = OUTPUT_DIR / "logs"

# Input: TFRecord files of raw tf.Examples (`image` bytes, `label` int64).
DEFAULT_DATA_ROOT = OUTPUT_DIR / "data" / "mnist-sample"
DATA_ROOT = Path(_env("DATA_ROOT", str(DEFAULT_DATA_ROOT))).resolve()
SAMPLE_SIZE = _env("SAMPLE_SIZE", 5000)  # digits of the offline sample to write (at most 5,000)
DATA_SEED = _env("DATA_SEED", 0)  # shuffles the class-sorted sample

# ExampleGen hash split, train:eval.
TRAIN_HASH_BUCKETS = _env("TRAIN_HASH_BUCKETS", 4)
EVAL_HASH_BUCKETS = _env("EVAL_HASH_BUCKETS", 1)

# Trainer hyperparameters (see trainer.train.TrainingConfig).
EPOCHS = _env("EPOCHS", 20)
BATCH_SIZE = _env("BATCH_SIZE", 64)  # per replica
LEARNING_RATE = _env("LEARNING_RATE", 2e-3)
EARLY_STOPPING_PATIENCE = _env("EARLY_STOPPING_PATIENCE", 5)
TRAINING_SEED = _env("TRAINING_SEED", 42)

# Evaluator gate: absolute accuracy floor, and no regression against the last blessed model.
EVAL_ACCURACY_THRESHOLD = _env("EVAL_ACCURACY_THRESHOLD", 0.97)
EVAL_MAX_ACCURACY_DROP = _env("EVAL_MAX_ACCURACY_DROP", 0.0)

# Beam. The DirectRunner in `in_memory` mode beats `multi_processing` on the 5,000-image
# sample (worker start-up outweighs the parallelism); `multi_processing` pays off on big data.
BEAM_DIRECT_RUNNING_MODE = _env("BEAM_DIRECT_RUNNING_MODE", "in_memory")
BEAM_DIRECT_NUM_WORKERS = _env("BEAM_DIRECT_NUM_WORKERS", 0)  # 0: one per CPU core

ENABLE_CACHE = _env("ENABLE_CACHE", 1) == 1

PREPROCESSING_FN = "trainer.preprocessing.preprocessing_fn"
RUN_FN = "trainer.train.run_fn"


def beam_pipeline_args() -> list[str]:
    args = [f"--direct_running_mode={BEAM_DIRECT_RUNNING_MODE}"]
    if BEAM_DIRECT_RUNNING_MODE != "in_memory":  # in_memory always runs one worker
        args.append(f"--direct_num_workers={BEAM_DIRECT_NUM_WORKERS}")
    return args


def training_config() -> dict:
    """The Trainer's custom_config: hyperparameters plus the model code's digest."""
    return {
        "epochs": EPOCHS,
        "batch_size": BATCH_SIZE,
        "learning_rate": LEARNING_RATE,
        "early_stopping_patience": EARLY_STOPPING_PATIENCE,
        "seed": TRAINING_SEED,
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
