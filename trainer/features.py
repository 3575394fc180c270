"""The data contract: raw feature names, image geometry, classes and signature names.

Every other module (pipeline, trainer, serving, tests) imports these facts from here.
"""

import dataclasses
import json

# Raw tf.Example features written by ingestion.
IMAGE_KEY = "image"  # encoded image bytes (PNG for the built-in MNIST data)
LABEL_KEY = "label"  # int64 class id, 0 .. number of classes - 1
CLASS_NAME_KEY = "class_name"  # the label's name ("7", "cat"): the data names its classes
# The picture files the pipeline reads and the client sends: the formats the model decodes.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

# What the network sees after Transform, for digits (MNIST's form).
IMAGE_HEIGHT = 28
IMAGE_WIDTH = 28
IMAGE_CHANNELS = 1
IMAGE_SHAPE = (IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS)

# Image profiles: how pictures become the network's input (pipeline/image_profile.py decides).
DIGITS = "digits"  # ink on paper, normalised to MNIST's form (trainer/normalisation.py)
PHOTOS = "photos"  # colour kept, aspect kept, padded to a square, per-channel scaling
PROFILES = (DIGITS, PHOTOS)


@dataclasses.dataclass(frozen=True)
class ImageProfile:
    """The profile and the geometry of the network's input. Transform and the Trainer read it
    from their custom_config; the SavedModel carries it as the asset IMAGE_PROFILE_ASSET, which
    the server, the page and the run report read."""

    name: str = DIGITS
    height: int = IMAGE_HEIGHT
    width: int = IMAGE_WIDTH
    channels: int = IMAGE_CHANNELS

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> "ImageProfile":
        """The profile a custom_config or an asset holds; digits where none is recorded (models
        and configs from before profiles existed)."""
        return cls(**json.loads(text)) if text else cls()


DIGITS_PROFILE = ImageProfile()
IMAGE_PROFILE_CONFIG = "image_profile"  # Transform's and the Trainer's custom_config key

# The offline MNIST sample's classes; other data sets bring their own, and the model learns
# the number and names of classes from the data.
MNIST_CLASS_NAMES = tuple(str(digit) for digit in range(10))

# The name TF Serving serves the model under unless MODEL_NAME says otherwise.
DEFAULT_MODEL_NAME = "mnist_cnn"

# Signatures of the exported SavedModel: the public contract for TF Serving clients.
SERVING_DEFAULT_SIGNATURE = "serving_default"  # serialized tf.Examples in
SERVING_IMAGE_SIGNATURE = "serving_image"  # encoded image bytes in
EXAMPLES_INPUT = "examples"
IMAGES_INPUT = "images"
PROBABILITIES_OUTPUT = "probabilities"
CLASS_ID_OUTPUT = "class_id"
CLASS_NAME_OUTPUT = "class_name"
# float32 [N]: the top class's probability, 0 when the picture holds no ink at all (a blank
# page, an empty photo), at most half CONFIDENCE_THRESHOLD for several digits. Below
# CONFIDENCE_THRESHOLD the client says "not sure": on the real-world benchmark most wrong
# answers fall below it and few right ones (tests/bench/README.md).
CONFIDENCE_OUTPUT = "confidence"
CONFIDENCE_THRESHOLD = 0.5
# Transformed feature, digits only: float32 [N], 1 where the normalisation found heavy marks
# (STRAY_SHARE of the digit's) in a row or a column with the digit. The picture shows several
# digits, which no one class names: its confidence is held at or under half
# CONFIDENCE_THRESHOLD, whatever the network says.
SEVERAL_DIGITS_XF = "several_digits_xf"
# Requests a model server replays on each version before it serves it (TF Serving's SavedModel
# warm-up: PredictionLog records in a TFRecord file), so that the first clients' requests do not
# pay for tracing and allocation.
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
WARMUP_BATCH_SIZES = (1, 32)
# Every answer's request id, which a correction names (serving/corrections.py): REST's response
# header; gRPC's trailing metadata key is its lower case.
REQUEST_ID_HEADER = "X-Request-Id"
CLASS_NAMES_ASSET = "class_names.txt"  # SavedModel asset: line i names class id i
IMAGE_PROFILE_ASSET = "image_profile.json"  # SavedModel asset: ImageProfile.to_json()


def transformed_name(key: str) -> str:
    """Name of a feature after Transform."""
    return f"{key}_xf"
