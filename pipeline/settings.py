"""Every knob of the pipeline in one typed, frozen object. Each entry point (`make run`,
`make schema`, the TFX CLI file, the Kubeflow runner, `make serve`) reads the environment once
(`EPOCHS=5 make run`) and passes the result down; values derived from others are computed from
the fields, so an override reaches everything that depends on it.

`python -m pipeline.settings serving_model_dir` prints a setting (the Makefile uses it).
"""

import dataclasses
import os
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path

from trainer.backbones import WEIGHT_FILES
from trainer.config import TrainingConfig, trainer_code_version
from trainer.features import DEFAULT_MODEL_NAME, PROFILES

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MNIST_SCHEMA = PROJECT_ROOT / "pipeline" / "schema" / "schema.pbtxt"  # the reviewed one
PREPROCESSING_FN = "trainer.preprocessing.preprocessing_fn"
RUN_FN = "trainer.train.run_fn"
BEAM_DIRECT_RUNNING_MODES = ("in_memory", "multi_threading", "multi_processing")
LOCAL_WORKERS = "none-local-workers-run-in-this-environment"  # Beam's container name, unused
# The Trainer's knobs by field of TrainingConfig (whose defaults are the pipeline's).
TRAINING_KNOBS = {
    "epochs": "EPOCHS",
    "batch_size": "BATCH_SIZE",
    "learning_rate": "LEARNING_RATE",
    "early_stopping_patience": "EARLY_STOPPING_PATIENCE",
    "seed": "TRAINING_SEED",
    "ensemble_members": "ENSEMBLE_MEMBERS",
    "label_smoothing": "LABEL_SMOOTHING",
    "jit_compile": "JIT_COMPILE",
    "photo_width": "PHOTO_WIDTH",
    "photo_flip": "PHOTO_FLIP",
    "backbone": "BACKBONE",
}


class SettingsError(ValueError):
    """An environment variable holds a value of the wrong type."""


def knob(env: str, default):
    """A field read from the environment variable `env`."""
    return dataclasses.field(default=default, metadata={"env": env})


def _convert(name: str, text: str, kind: type):
    if kind is bool:
        if text.lower() in ("1", "true", "yes"):
            return True
        if text.lower() in ("0", "false", "no"):
            return False
        raise SettingsError(f"{name}={text}: expected 1 or 0")
    try:
        return kind(text)
    except ValueError:
        raise SettingsError(f"{name}={text}: expected {kind.__name__}") from None


def read_env(cls, environ: Mapping[str, str], names: Mapping[str, str] | None = None) -> dict:
    """The fields of dataclass `cls` that `environ` sets (empty means unset), converted to each
    field's type; `names` maps fields to variables (default: each field's `knob` name)."""
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        name = (names or {}).get(field.name) or field.metadata.get("env")
        text = environ.get(name, "") if name else ""
        if text != "":
            values[field.name] = _convert(name, text, hints[field.name])
    return values


@dataclasses.dataclass(frozen=True)
class Gates:
    """Where a run stops (data) or a model is refused (Evaluator, on the test split)."""

    max_bad_image_fraction: float = knob("MAX_BAD_IMAGE_FRACTION", 0.01)  # undecodable images
    # Fewest training examples (train and validation) of each class; checked before any
    # component runs (pipeline/data_source.py).
    min_class_examples: int = knob("MIN_CLASS_EXAMPLES", 10)
    # Largest L-infinity change of the class distribution against the previous span's
    # statistics (the previous run's, when the data has no spans).
    max_label_drift: float = knob("MAX_LABEL_DRIFT", 0.15)
    accuracy_floor: float = knob("EVAL_ACCURACY_THRESHOLD", 0.97)
    # No significant regression against the last blessed model: a paired one-sided McNemar
    # test on the same test examples refuses when p < this (components/paired_regression.py).
    regression_alpha: float = knob("EVAL_REGRESSION_ALPHA", 0.05)
    # The serving check before the Pusher (components/serving_check.py): a model server must
    # make the candidate AVAILABLE within this time and answer one image within this p50.
    serving_max_load_seconds: float = knob("SERVING_MAX_LOAD_SECONDS", 60.0)
    serving_max_latency_ms: float = knob("SERVING_MAX_LATENCY_MS", 100.0)


@dataclasses.dataclass(frozen=True)
class Settings:
    pipeline_name: str = knob("PIPELINE_NAME", "mnist-cnn-pipeline")  # KFP v2: [a-z0-9-]
    model_name: str = knob("MODEL_NAME", DEFAULT_MODEL_NAME)  # TF Serving's model name
    output_dir: Path = knob("OUTPUT_DIR", PROJECT_ROOT / "outputs")  # everything a run writes

    # What to train on (pipeline/data_source.py): "mnist-sample" (offline default), "mnist"
    # (the full 70,000 digits, downloaded), or a folder of class sub-folders or of IDX files.
    data: str = knob("DATA", "mnist-sample")
    # An external labelled test set (IDX folder, class-folder tree or TFRecord files) that
    # replaces the data's own test split: the gate and every printed accuracy read it.
    test_data: str = knob("TEST_DATA", "")
    # The reviewed schema every run's data is checked against. "" picks MNIST_SCHEMA for digits
    # and lets SchemaGen infer one for class folders; "infer" always infers. `make schema`
    # writes one to review for a new data set.
    schema: str = knob("SCHEMA", "")
    # Data in spans (`<DATA>/span-<N>/...`): each run ingests the newest span and trains on it;
    # TRAIN_SPANS above 1 trains on that many of the latest that passed (the local runner only:
    # pipeline/resolvers.py). WARM_START=1 starts from the last blessed model's weights.
    train_spans: int = knob("TRAIN_SPANS", 1)
    warm_start: bool = knob("WARM_START", False)
    mnist_mirror: str = knob("MNIST_MIRROR", "https://storage.googleapis.com/cvdf-datasets/mnist/")
    # The offline sample: TFRecords of raw tf.Examples; "" is <OUTPUT_DIR>/data/mnist-sample.
    data_root: str = knob("DATA_ROOT", "")
    sample_size: int = knob("SAMPLE_SIZE", 5000)  # digits of the sample (at most 5,000)
    data_seed: int = knob("DATA_SEED", 0)  # shuffles the class-sorted sample
    # How pictures become the network's input (pipeline/image_profile.py): "auto" decides from
    # the training pictures; "digits" (MNIST's form) or "photos" (colour and aspect kept, at
    # the data's median size up to PHOTO_MAX_SIDE pixels) force one.
    image_profile: str = knob("IMAGE_PROFILE", "auto")
    photo_max_side: int = knob("PHOTO_MAX_SIDE", 64)

    # Beam's DirectRunner: `in_memory` beats `multi_processing` on the 5,000-image sample
    # (worker start-up outweighs the parallelism); `multi_processing` pays off on big data.
    beam_direct_running_mode: str = knob("BEAM_DIRECT_RUNNING_MODE", "in_memory")
    beam_direct_num_workers: int = knob("BEAM_DIRECT_NUM_WORKERS", 0)  # 0: one per CPU core
    enable_cache: bool = knob("ENABLE_CACHE", True)
    # The serving check's model server: "auto" (TF Serving's tensorflow_model_server when on
    # the PATH, else the local server), "tf_serving" or "local".
    model_server: str = knob("SERVING_CHECK_SERVER", "auto")

    training: TrainingConfig = TrainingConfig()
    gates: Gates = Gates()

    def __post_init__(self):
        object.__setattr__(self, "output_dir", Path(self.output_dir).expanduser().resolve())
        if self.beam_direct_running_mode not in BEAM_DIRECT_RUNNING_MODES:
            raise SettingsError(
                f"BEAM_DIRECT_RUNNING_MODE={self.beam_direct_running_mode}: Beam's DirectRunner "
                f"runs {', '.join(BEAM_DIRECT_RUNNING_MODES)}"
            )
        if self.image_profile not in ("auto", *PROFILES):
            raise SettingsError(
                f"IMAGE_PROFILE={self.image_profile}: expected auto, {' or '.join(PROFILES)}"
            )
        if self.photo_max_side < 32:
            raise SettingsError(f"PHOTO_MAX_SIDE={self.photo_max_side}: expected 32 or more")
        if self.training.backbone and self.training.backbone not in WEIGHT_FILES:
            raise SettingsError(
                f"BACKBONE={self.training.backbone}: expected {' or '.join(WEIGHT_FILES)}"
            )
        if self.train_spans < 1:
            raise SettingsError(f"TRAIN_SPANS={self.train_spans}: expected 1 or more")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> "Settings":
        """The settings `environ` (default: this process's environment) sets, then `overrides`
        by field name."""
        environ = os.environ if environ is None else environ
        training = TrainingConfig(
            **read_env(TrainingConfig, environ, TRAINING_KNOBS),
            code_version=trainer_code_version(),
        )
        return cls(
            **{
                **read_env(cls, environ),
                "training": training,
                "gates": Gates(**read_env(Gates, environ)),
                **overrides,
            }
        )

    # Where a run writes, all under output_dir.
    @property
    def pipeline_root(self) -> Path:
        return self.output_dir / "tfx" / self.pipeline_name

    @property
    def metadata_path(self) -> Path:
        return self.output_dir / "metadata" / f"{self.pipeline_name}.sqlite"

    @property
    def serving_model_dir(self) -> Path:
        """TF Serving's base path: the Pusher writes `<base>/<version>/`."""
        return self.output_dir / "serving_model" / self.model_name

    @property
    def log_dir(self) -> Path:
        return self.output_dir / "logs"

    @property
    def request_log_dir(self) -> Path:
        """Where `make serve` logs the requests it answers (serving/request_log.py)."""
        return self.output_dir / "request_logs" / self.model_name

    @property
    def report_dir(self) -> Path:
        return self.output_dir / "report"

    @property
    def drift_file(self) -> Path:
        """`make monitor`'s distances, which `make serve` shows as Prometheus gauges."""
        return self.output_dir / "monitor" / "drift.json"

    @property
    def schema_output_dir(self) -> Path:
        """Where `make schema` writes."""
        return self.output_dir / "schema"

    @property
    def default_sample_root(self) -> Path:
        return self.output_dir / "data" / "mnist-sample"

    @property
    def sample_root(self) -> Path:
        return (
            Path(self.data_root).expanduser().resolve()
            if self.data_root
            else self.default_sample_root
        )

    @property
    def kubeflow_spec_path(self) -> Path:
        """Where `make kubeflow` writes the KFP v2 / Vertex AI spec."""
        return self.output_dir / "kubeflow" / f"{self.pipeline_name}.json"

    def beam_pipeline_args(self) -> list[str]:
        """Beam's DirectRunner by name, never by default: from Beam 2.68 on the default first
        tries the Prism runner, downloaded at run time, which TFX 1.16 does not support."""
        args = [
            "--runner=DirectRunner",
            f"--direct_running_mode={self.beam_direct_running_mode}",
            # TFX's Beam executors package the installed TFX as an sdist for remote workers
            # unless the arguments name the workers' container (1.5-2.3 s and 49 MB of temporary
            # files per component). The DirectRunner's workers are this process or its children
            # in .venv: it starts no container and stages nothing, so the name is never used.
            f"--sdk_container_image={LOCAL_WORKERS}",
        ]
        if self.beam_direct_running_mode != "in_memory":  # in_memory always runs one worker
            args.append(f"--direct_num_workers={self.beam_direct_num_workers}")
        return args


def print_settings(settings, names: list[str]) -> int:
    """Prints the settings named (fields or properties), one per line; an exit status."""
    for name in names:
        value = getattr(settings, name, None)
        if value is None or isinstance(value, types.MethodType):
            print(f"error: no setting {name!r}", file=sys.stderr)
            return 2
        print(value)
    return 0


if __name__ == "__main__":
    sys.exit(print_settings(Settings.from_env(), sys.argv[1:]))
