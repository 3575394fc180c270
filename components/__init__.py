"""Data preparation and custom TFX components."""
