"""A local server speaking TF Serving's gRPC API, for machines without TF Serving.

    python -m serving.server [--port 8500] [--model_base_path outputs/serving_model/mnist_cnn]

It implements PredictionService (Predict, Classify, GetModelMetadata) and ModelService
(GetModelStatus) with TF Serving's request and response messages and status codes, so clients
written against it work unchanged against TF Serving (serving/docker-compose.yml). In
production, run TF Serving itself.
"""

import argparse
import logging
import signal
import threading
from concurrent import futures
from pathlib import Path

import grpc
import tensorflow as tf
from google.protobuf import any_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.limits import GRPC_MESSAGE_OPTIONS
from serving.model_store import LoadedVersion, VersionedModel
from trainer.features import DEFAULT_MODEL_NAME, SERVING_DEFAULT_SIGNATURE

log = logging.getLogger(__name__)

CLASSIFY_METHOD = "tensorflow/serving/classify"
DEFAULT_WORKERS = 8
DEFAULT_MAX_CONCURRENT_RPCS = 64


class RequestError(Exception):
    """A request the server refuses, with the gRPC status code to refuse it with."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def _served_version(model: VersionedModel, model_spec) -> LoadedVersion:
    """The version a request's ModelSpec asks for; NOT_FOUND for other models or versions."""
    if model_spec.name != model.name:
        raise RequestError(grpc.StatusCode.NOT_FOUND, f"Servable not found: {model_spec.name!r}")
    version = model_spec.version.value if model_spec.HasField("version") else None
    try:
        return model.get(version)
    except LookupError as error:
        raise RequestError(grpc.StatusCode.NOT_FOUND, str(error)) from error


def _signature(loaded: LoadedVersion, name: str):
    name = name or SERVING_DEFAULT_SIGNATURE
    if name not in loaded.model.signatures:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Serving signature name: {name!r} not found in signature def; "
            f"available: {sorted(loaded.model.signatures)}",
        )
    return name, loaded.model.signatures[name]


def _input_tensors(signature, inputs) -> dict[str, tf.Tensor]:
    """Request TensorProtos as tensors, checked against the signature's names, dtypes, shapes."""
    _, specs = signature.structured_input_signature
    if set(inputs) != set(specs):
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Request inputs {sorted(inputs)} do not match the signature's {sorted(specs)}",
        )
    tensors = {}
    for name, proto in inputs.items():
        spec = specs[name]
        if tf.dtypes.as_dtype(proto.dtype) != spec.dtype:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Input {name!r} has dtype {tf.dtypes.as_dtype(proto.dtype).name}, "
                f"the signature expects {spec.dtype.name}",
            )
        try:
            value = tf.constant(tf.make_ndarray(proto), dtype=spec.dtype)
        except Exception as error:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT, f"Input {name!r} is malformed: {error}"
            ) from error
        if not spec.shape.is_compatible_with(value.shape):
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Input {name!r} has shape {value.shape}, the signature expects {spec.shape}",
            )
        tensors[name] = value
    return tensors


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, model: VersionedModel):
        self.model = model

    def Predict(self, request, context):
        return _answer(context, self._predict, request)

    def Classify(self, request, context):
        return _answer(context, self._classify, request)

    def GetModelMetadata(self, request, context):
        return _answer(context, self._metadata, request)

    def _predict(self, request) -> predict_pb2.PredictResponse:
        loaded = _served_version(self.model, request.model_spec)
        name, signature = _signature(loaded, request.model_spec.signature_name)
        try:
            outputs = signature(**_input_tensors(signature, request.inputs))
        except tf.errors.InvalidArgumentError as error:  # e.g. bytes that are no image
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, error.message) from error
        wanted = set(request.output_filter) or set(outputs)
        if unknown := wanted - set(outputs):
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT, f"output_filter names unknown outputs {unknown}"
            )
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.model.name
        response.model_spec.version.value = loaded.version
        response.model_spec.signature_name = name
        for key in wanted:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key].numpy()))
        return response

    def _classify(self, request):
        loaded = _served_version(self.model, request.model_spec)
        name, _ = _signature(loaded, request.model_spec.signature_name)
        method = loaded.signature_defs[name].method_name
        # TF Serving's answer for signatures that are not classification signatures; this
        # project exports predict signatures only, so Classify has nothing more to serve.
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Expected classification signature method_name to be {CLASSIFY_METHOD}. Was: {method}",
        )

    def _metadata(self, request) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if list(request.metadata_field) != ["signature_def"]:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "Metadata field(s) not supported: only 'signature_def' is",
            )
        loaded = _served_version(self.model, request.model_spec)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature_def in loaded.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature_def)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.model.name
        response.model_spec.version.value = loaded.version
        packed = any_pb2.Any()
        packed.Pack(signature_map)
        response.metadata["signature_def"].CopyFrom(packed)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, model: VersionedModel):
        self.model = model

    def GetModelStatus(self, request, context):
        return _answer(context, self._status, request)

    def _status(self, request) -> get_model_status_pb2.GetModelStatusResponse:
        if request.model_spec.name != self.model.name:
            raise RequestError(
                grpc.StatusCode.NOT_FOUND,
                f"Could not find any versions of model {request.model_spec.name!r}",
            )
        states = self.model.states()
        if request.model_spec.HasField("version"):
            version = request.model_spec.version.value
            if version not in states:
                raise RequestError(
                    grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model"
                )
            states = {version: states[version]}
        response = get_model_status_pb2.GetModelStatusResponse()
        State = get_model_status_pb2.ModelVersionStatus.State  # noqa: N806
        for version, state in sorted(states.items(), reverse=True):
            status = response.model_version_status.add(
                version=version, state=State.Value(state.state)
            )
            if state.error:
                status.status.error_code = grpc.StatusCode.UNKNOWN.value[0]
                status.status.error_message = state.error
        return response


def _answer(context: grpc.ServicerContext, handler, request):
    """Runs a handler; refusals and unexpected errors become gRPC statuses, never crashes."""
    try:
        return handler(request)
    except RequestError as error:
        context.abort(error.code, str(error))
    except Exception as error:
        log.exception("Request failed")
        context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")


def create_server(
    model: VersionedModel,
    address: str,
    workers: int = DEFAULT_WORKERS,
    max_concurrent_rpcs: int = DEFAULT_MAX_CONCURRENT_RPCS,
) -> tuple[grpc.Server, int]:
    """A started gRPC server and its port (pass port 0 for an ephemeral one)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        maximum_concurrent_rpcs=max_concurrent_rpcs,  # more get RESOURCE_EXHAUSTED
        options=GRPC_MESSAGE_OPTIONS,
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(model), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(model), server)
    port = server.add_insecure_port(address)
    server.start()
    return server, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to accept other machines")
    parser.add_argument("--port", type=int, default=8500)
    parser.add_argument("--model_name", default=DEFAULT_MODEL_NAME)
    parser.add_argument("--model_base_path", type=Path, required=True)
    parser.add_argument("--poll_interval_s", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--max_concurrent_rpcs", type=int, default=DEFAULT_MAX_CONCURRENT_RPCS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    model = VersionedModel(args.model_name, args.model_base_path, args.poll_interval_s)
    model.start()
    server, port = create_server(
        model, f"{args.host}:{args.port}", args.workers, args.max_concurrent_rpcs
    )
    log.info(
        "Serving model %s from %s on %s:%d (versions: %s)",
        args.model_name,
        args.model_base_path,
        args.host,
        port,
        {v: s.state for v, s in model.states().items()} or "none yet",
    )
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    stopping.wait()
    log.info("Shutting down: finishing requests in flight")
    server.stop(grace=10).wait()
    model.stop()


if __name__ == "__main__":
    main()
