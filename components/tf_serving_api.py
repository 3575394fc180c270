"""TF Serving's gRPC messages as this project sends and reads them: one place for the serving
client (serving/grpc_client.py) and the serving check (components/serving_check.py), which
`tests/test_layers.py` lets serving import."""

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, model_pb2, predict_pb2


def model_spec(spec: model_pb2.ModelSpec, model_name: str, version: int | None = None) -> None:
    """Fills `spec`: the model, and its version where one is asked for (else the latest)."""
    spec.name = model_name
    if version is not None:
        spec.version.value = version


def predict_request(
    model_name: str,
    signature_name: str,
    input_name: str,
    values: list[bytes],
    version: int | None = None,
) -> predict_pb2.PredictRequest:
    """A Predict of string values (pictures or serialized tf.Examples) on one input."""
    request = predict_pb2.PredictRequest()
    model_spec(request.model_spec, model_name, version)
    request.model_spec.signature_name = signature_name
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
    return request


def outputs_of(response: predict_pb2.PredictResponse) -> dict[str, np.ndarray]:
    return {name: tf.make_ndarray(tensor) for name, tensor in response.outputs.items()}


def status_request(
    model_name: str, version: int | None = None
) -> get_model_status_pb2.GetModelStatusRequest:
    request = get_model_status_pb2.GetModelStatusRequest()
    model_spec(request.model_spec, model_name, version)
    return request
