from tests.fixtures import digits, png_digits, trained_model_dir, transform_output  # noqa: F401
