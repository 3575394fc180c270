"""Serving: TF Serving deployment files, a gRPC client, and a local TF Serving-compatible server."""
