"""The Trainer's settings, TensorFlow-free: the pipeline builds them, the Trainer reads them back
from its `custom_config`, and neither needs the other's imports to do so."""

import dataclasses
import hashlib
from pathlib import Path

HISTORY_FILE = "history.json"  # per-epoch metrics, in the Trainer's model_run artifact
# The fitted temperature, the validation split's calibration error before and after it, and
# the network's own top probability under which a digit is held unsure.
CALIBRATION_FILE = "calibration.json"


def trainer_code_version() -> str:
    """Digest of `trainer/`'s source. Transform and Trainer name their functions by module path,
    which TFX's cache cannot see into; this digest in their config makes an edit re-run them."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if not path.name.endswith("_test.py"):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters (defaults: the pipeline's), carried to the Trainer in its custom_config."""

    epochs: int = 20
    batch_size: int = 32  # per replica: the global batch grows with the number of devices
    learning_rate: float = 2e-3  # initial; decays to zero along a cosine over the epochs
    early_stopping_patience: int = 5  # epochs without a lower validation loss
    seed: int = 42
    ensemble_members: int = 3  # networks whose probabilities the model averages
    label_smoothing: float = 0.1
    # Shares of each training batch rendered as pictures really arrive (trainer/conditions.py),
    # replaced by printed digits and letter strings (trainer/printed.py), and by two digits side
    # by side, filled shapes and faces, pair_share each (all but the first for digits only).
    real_world_share: float = 0.4
    printed_share: float = 0.08
    pair_share: float = 0.03
    jit_compile: bool = False  # XLA-compile the training step (pays off on GPUs)
    # Photos (trainer/features.py's profiles): the first convolution's filters, and whether mirror
    # images are training data (no for data where a mirror changes the class: letters, arrows).
    photo_width: int = 16
    photo_flip: bool = True
    backbone: str = ""  # photos: an ImageNet network to fine-tune instead (trainer/backbones.py)
    code_version: str = ""  # trainer_code_version() of the code that trains

    def to_custom_config(self) -> dict:
        """The Trainer's custom_config (JSON-serialisable, as TFX stores it)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_custom_config(cls, custom_config: dict) -> "TrainingConfig":
        """The config back from a custom_config, which may hold other entries too (Vertex AI's);
        a missing field is an error that names it."""
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in custom_config]
        if missing:
            raise KeyError(f"The Trainer's custom_config lacks {', '.join(missing)}")
        return cls(**{f.name: custom_config[f.name] for f in dataclasses.fields(cls)})
