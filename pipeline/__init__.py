"""TFX pipeline definition, its configuration and its runners."""
