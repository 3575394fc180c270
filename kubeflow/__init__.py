"""Kubeflow Pipelines (v2) and Vertex AI Pipelines: compile, containerise, submit."""
