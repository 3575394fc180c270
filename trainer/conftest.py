from tests.fixtures import (  # noqa: F401
    digits,
    photo_transform_output,
    photos,
    png_digits,
    trained_model_dir,
    transform_output,
)
