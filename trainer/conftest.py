from tests.fixtures import digits, png_digits, transform_output  # noqa: F401
