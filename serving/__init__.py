"""Serving: TF Serving deployment files, gRPC and REST clients, and a local TF
Serving-compatible server."""

# The TF Serving release matching TensorFlow 2.16: the compose file, the Kubernetes manifests
# and the Kubeflow image (whose serving check runs it) pin it.
TF_SERVING_VERSION = "2.16.1"
