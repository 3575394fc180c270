"""The data contract: raw feature names, image geometry, classes and signature names.

Every other module (pipeline, trainer, serving, tests) imports these facts from here.
"""

# Raw tf.Example features written by ingestion.
IMAGE_KEY = "image"  # encoded image bytes (PNG for the built-in MNIST data)
LABEL_KEY = "label"  # int64 class id in [0, NUM_CLASSES)

# What the network sees after Transform.
IMAGE_HEIGHT = 28
IMAGE_WIDTH = 28
IMAGE_CHANNELS = 1
IMAGE_SHAPE = (IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS)

NUM_CLASSES = 10
CLASS_NAMES = tuple(str(digit) for digit in range(NUM_CLASSES))

# Signatures of the exported SavedModel: the public contract for TF Serving clients.
SERVING_DEFAULT_SIGNATURE = "serving_default"  # serialized tf.Examples in
SERVING_IMAGE_SIGNATURE = "serving_image"  # encoded image bytes in
EXAMPLES_INPUT = "examples"
IMAGES_INPUT = "images"
PROBABILITIES_OUTPUT = "probabilities"
CLASS_ID_OUTPUT = "class_id"


def transformed_name(key: str) -> str:
    """Name of a feature after Transform."""
    return f"{key}_xf"
