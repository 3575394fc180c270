"""A gRPC client for TF Serving's API (PredictionService, ModelService), and so for
serving.server too; retries UNAVAILABLE with exponential backoff under a deadline per call."""

import time
from collections.abc import Callable

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from components.tf_serving_api import model_spec, outputs_of, predict_request, status_request
from serving.client import DEFAULT_TARGET, Prediction, PredictionClient
from serving.limits import GRPC_MESSAGE_OPTIONS
from trainer.features import (
    CLASS_ID_OUTPUT,
    CLASS_NAME_OUTPUT,
    CONFIDENCE_OUTPUT,
    DEFAULT_MODEL_NAME,
    PROBABILITIES_OUTPUT,
    REQUEST_ID_HEADER,
)


class ServingClient(PredictionClient):
    """Predict, GetModelMetadata and GetModelStatus against one model. Each call has a
    deadline; calls answered UNAVAILABLE are retried with exponential backoff."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        model_name: str = DEFAULT_MODEL_NAME,
        timeout_s: float = 10.0,
        retries: int = 5,
        backoff_s: float = 0.2,
        version: int | None = None,
    ):
        self.model_name = model_name
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.version = version
        # The channel reconnects on the retries' schedule, not gRPC's own (1 s, then 1.6x as
        # long): a retry after the server came up must find the channel trying again.
        backoff_ms = int(backoff_s * 1000)
        self._channel = grpc.insecure_channel(
            target,
            options=[
                *GRPC_MESSAGE_OPTIONS,
                ("grpc.initial_reconnect_backoff_ms", backoff_ms),
                ("grpc.min_reconnect_backoff_ms", backoff_ms),
                ("grpc.max_reconnect_backoff_ms", backoff_ms * 2**retries),
            ],
        )
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def __enter__(self) -> "ServingClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, rpc: Callable, request):
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                return rpc(request, timeout=self.timeout_s)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == self.retries:
                    raise
                time.sleep(delay)
                delay *= 2

    def predict(self, signature_name: str, input_name: str, values: list[bytes]) -> Prediction:
        request = predict_request(self.model_name, signature_name, input_name, values, self.version)
        response, call = self._call(self._predictions.Predict.with_call, request)
        trailing = dict(call.trailing_metadata() or ())
        outputs = outputs_of(response)
        class_ids = outputs[CLASS_ID_OUTPUT]
        if CLASS_NAME_OUTPUT in outputs:
            names = [name.decode() for name in outputs[CLASS_NAME_OUTPUT]]
        else:  # a model exported before class names travelled with it
            names = [str(class_id) for class_id in class_ids]
        probabilities = outputs[PROBABILITIES_OUTPUT]
        if CONFIDENCE_OUTPUT in outputs:
            confidences = outputs[CONFIDENCE_OUTPUT]
        else:  # a model exported before it said how sure it is
            confidences = probabilities.max(axis=-1)
        return Prediction(
            probabilities=probabilities,
            class_ids=class_ids,
            class_names=names,
            confidences=confidences,
            model_version=response.model_spec.version.value,
            request_id=trailing.get(REQUEST_ID_HEADER.lower()),
        )

    def metadata(self) -> dict[str, dict]:
        """{signature: {"inputs": {name: (dtype, shape)}, "outputs": {...}}}"""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        model_spec(request.model_spec, self.model_name, self.version)
        response = self._call(self._predictions.GetModelMetadata, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)

        def describe(tensors) -> dict:
            return {
                name: (
                    tf.dtypes.as_dtype(info.dtype).name,
                    [d.size for d in info.tensor_shape.dim],
                )
                for name, info in tensors.items()
            }

        return {
            name: {"inputs": describe(sig.inputs), "outputs": describe(sig.outputs)}
            for name, sig in signature_map.signature_def.items()
        }

    def status(self) -> list[tuple[int, str]]:
        """(version, state) of every version the server knows, newest first."""
        request = status_request(self.model_name, self.version)
        response = self._call(self._models.GetModelStatus, request)
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        return [(s.version, state_name(s.state)) for s in response.model_version_status]
