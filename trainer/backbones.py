"""BACKBONE: an ImageNet-trained network from Keras' applications, fine-tuned on photos in place
of the project's own photo network. Its weights come from Keras' cache, never from the
internet at run time: a run whose file is missing is refused before any component runs, with
the path to put it in and where Keras would have fetched it from. TensorFlow-free, so that the
pipeline can check it at once."""

from pathlib import Path

# Keras' names for each backbone's weights without the classification top, and their origins.
WEIGHT_FILES = {
    "mobilenet_v3_small": (
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/",
    ),
    "efficientnet_b0": (
        "efficientnetb0_notop.h5",
        "https://storage.googleapis.com/keras-applications/",
    ),
}


def weights_path(backbone: str, home: Path | None = None) -> Path:
    """Where Keras keeps the backbone's weights: ~/.keras/models/, as keras.utils.get_file
    caches them."""
    return (home or Path.home()) / ".keras" / "models" / WEIGHT_FILES[backbone][0]


def missing_weights(backbone: str, home: Path | None = None) -> str | None:
    """Why BACKBONE's weights cannot be read here, or None."""
    path = weights_path(backbone, home)
    if path.is_file():
        return None
    file_name, origin = WEIGHT_FILES[backbone]
    return (
        f"BACKBONE={backbone} fine-tunes ImageNet weights, and {path} does not exist: put "
        f"{origin}{file_name} there (runs download nothing), or unset BACKBONE to train the "
        "photo network from scratch"
    )
