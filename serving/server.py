"""A local server speaking TF Serving's gRPC and REST APIs, for machines without TF Serving.

    python -m serving.server --model_base_path outputs/serving_model/mnist_cnn
        [--port 8500] [--rest_api_port 8501] [--request_log_dir outputs/request_logs/mnist_cnn]
    python -m serving.server --model_config_file models.config
        [--model_config_file_poll_wait_seconds 5]

gRPC: PredictionService (Predict, Classify, GetModelMetadata) and ModelService (GetModelStatus,
HandleReloadConfigRequest) with TF Serving's messages and status codes; several models, version
policies and version labels from TF Serving's model config file (serving/model_config.py).
REST on the second port: TF Serving's `/v1/models` API, Prometheus metrics at
/monitoring/prometheus/metrics, and a page at / where a person draws a digit. Clients written
against it work unchanged against TF Serving (serving/docker-compose.yml); in production, run
TF Serving itself. Unlike TF Serving, it can log the requests it answers
(serving/request_log.py), for `make monitor`.
"""

import argparse
import logging
import os
import signal
import threading
from concurrent import futures
from pathlib import Path

# TensorFlow reads this once, as it loads: oneDNN's kernels cost more to set up than to run on
# a request of one picture (serving/README.md, Local server), training keeps them. Set for the
# server as a program only: a process that imports it (the pipeline's demo, tests) keeps
# oneDNN, TensorFlow's default; a value already in the environment wins.
SERVING_ENVIRONMENT = {"TF_ENABLE_ONEDNN_OPTS": "0"}
if __name__ == "__main__":
    for name, value in SERVING_ENVIRONMENT.items():
        os.environ.setdefault(name, value)

import grpc
import tensorflow as tf
from tensorflow.python.util import _pywrap_util_port  # no public call tells which kernels run
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.batching import Batcher, BatchingParameters, read_batching_parameters
from serving.core import ServingCore, ServingError, invalid
from serving.corrections import Corrections
from serving.limits import GRPC_MESSAGE_OPTIONS, Limits
from serving.metrics import Metrics
from serving.model_config import ConfigError, ModelConfig, model_configs, read_model_config
from serving.model_registry import LabelError, ModelRegistry
from serving.request_log import RequestLog, RequestLogSettings
from serving.rest import RestSettings, create_rest_server
from trainer.features import DEFAULT_MODEL_NAME, REQUEST_ID_HEADER

log = logging.getLogger(__name__)

CLASSIFY_METHOD = "tensorflow/serving/classify"
GRPC = "GRPC"
DEFAULT_WORKERS = 8
DEFAULT_MAX_CONCURRENT_RPCS = 64
DEFAULT_DRAIN_S = 30.0


def _version(model_spec) -> int | None:
    return model_spec.version.value if model_spec.HasField("version") else None


def _label(model_spec) -> str | None:
    return model_spec.version_label if model_spec.HasField("version_label") else None


def strings_of(name: str, proto, max_values: int) -> list[bytes]:
    """A request TensorProto's string values, checked against its declared shape (one
    dimension, at most `max_values`, exactly as many values as declared) before any copy."""
    if proto.dtype != tf.string.as_datatype_enum:
        dtype = tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else "unset"
        raise invalid(f"Input {name!r} has dtype {dtype}, the signature expects string")
    dims = [dim.size for dim in proto.tensor_shape.dim]
    if len(dims) != 1 or dims[0] < 0:
        raise invalid(f"Input {name!r} has shape {dims}, the signature expects [batch]")
    if dims[0] > max_values:
        raise invalid(
            f"Input {name!r} declares {dims[0]} values, over the limit of {max_values} per "
            "request (--max_batch_size)"
        )
    if len(proto.string_val) != dims[0]:
        raise invalid(
            f"Input {name!r} declares shape [{dims[0]}] but holds {len(proto.string_val)} values"
        )
    return list(proto.string_val)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: ServingCore):
        self.core = core

    def Predict(self, request, context):
        return _answer(
            context,
            lambda: self.core.measured(
                request.model_spec.name, "predict", GRPC, lambda: self._predict(request, context)
            ),
        )

    def Classify(self, request, context):
        return _answer(
            context,
            lambda: self.core.measured(
                request.model_spec.name, "classify", GRPC, lambda: self._classify(request)
            ),
        )

    def GetModelMetadata(self, request, context):
        return _answer(context, lambda: self._metadata(request))

    def _predict(self, request, context) -> predict_pb2.PredictResponse:
        spec = request.model_spec
        inputs = {
            name: strings_of(name, proto, self.core.limits.max_batch_size)
            for name, proto in request.inputs.items()
        }
        loaded = self.core.version(spec.name, _version(spec), _label(spec))
        signature_name, outputs, request_id = self.core.predict(
            spec.name, loaded, spec.signature_name, inputs
        )
        if request_id:  # what a correction names (serving/corrections.py)
            context.set_trailing_metadata(((REQUEST_ID_HEADER.lower(), request_id),))
        wanted = set(request.output_filter) or set(outputs)
        if unknown := wanted - set(outputs):
            raise invalid(f"output_filter names unknown outputs {sorted(unknown)}")
        response = predict_pb2.PredictResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = loaded.version
        response.model_spec.signature_name = signature_name
        for key in wanted:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key]))
        return response

    def _classify(self, request):
        spec = request.model_spec
        loaded = self.core.version(spec.name, _version(spec), _label(spec))
        name, _ = self.core.signature(loaded, request.model_spec.signature_name)
        method = loaded.signature_defs[name].method_name
        # TF Serving's answer for signatures that are not classification signatures; this
        # project exports predict signatures only, so Classify has nothing more to serve.
        raise invalid(
            f"Expected classification signature method_name to be {CLASSIFY_METHOD}. Was: {method}"
        )

    def _metadata(self, request) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if list(request.metadata_field) != ["signature_def"]:
            raise invalid("Metadata field(s) not supported: only 'signature_def' is")
        spec = request.model_spec
        return self.core.metadata(spec.name, _version(spec), _label(spec))


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: ServingCore):
        self.core = core

    def GetModelStatus(self, request, context) -> get_model_status_pb2.GetModelStatusResponse:
        spec = request.model_spec
        return _answer(context, lambda: self.core.status(spec.name, _version(spec)))

    def HandleReloadConfigRequest(self, request, context):
        """Serves the request's config from now on, or refuses it and keeps the running one."""
        return _answer(context, lambda: self._reload(request.config))

    def _reload(self, config) -> model_management_pb2.ReloadConfigResponse:
        try:
            self.core.models.apply(model_configs(config, source="HandleReloadConfigRequest"))
        except LabelError as error:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION, str(error)) from None
        except ConfigError as error:
            raise invalid(str(error)) from None
        log.info("Reloaded the model config: serving %s", self.core.models.names)
        return model_management_pb2.ReloadConfigResponse()


def _answer(context: grpc.ServicerContext, handler):
    """Runs a handler; refusals become their status, anything unexpected INTERNAL with one log
    line (no traceback per request), never a crash."""
    try:
        return handler()
    except ServingError as error:
        context.abort(error.code, str(error))
    except Exception as error:
        log.error("Request failed: %s: %s", type(error).__name__, error)
        context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__} while serving")


def create_server(
    core: ServingCore,
    address: str,
    workers: int = DEFAULT_WORKERS,
    max_concurrent_rpcs: int = DEFAULT_MAX_CONCURRENT_RPCS,
) -> tuple[grpc.Server, int]:
    """A started gRPC server over `core` (a REST server may share it) and its port (pass
    port 0 for an ephemeral one)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        maximum_concurrent_rpcs=max_concurrent_rpcs,  # more get RESOURCE_EXHAUSTED
        options=GRPC_MESSAGE_OPTIONS,
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(core), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(core), server)
    port = server.add_insecure_port(address)
    server.start()
    return server, port


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to accept other machines")
    parser.add_argument("--port", type=int, default=8500, help="gRPC")
    parser.add_argument("--rest_api_port", type=int, default=8501, help="REST; 0: none")
    parser.add_argument("--model_name", default=DEFAULT_MODEL_NAME)
    models = parser.add_mutually_exclusive_group(required=True)
    models.add_argument("--model_base_path", type=Path)
    models.add_argument(
        "--model_config_file", type=Path, help="TF Serving's model config: several models, labels"
    )
    parser.add_argument(
        "--model_config_file_poll_wait_seconds",
        type=float,
        default=0,
        help="read the config file again this often (0: never)",
    )
    parser.add_argument("--allow_version_labels_for_unavailable_models", action="store_true")
    parser.add_argument("--poll_interval_s", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--max_concurrent_rpcs", type=int, default=DEFAULT_MAX_CONCURRENT_RPCS)
    parser.add_argument(
        "--drain_s", type=float, default=DEFAULT_DRAIN_S, help="on SIGTERM: time for requests"
    )
    for field, default in vars(Limits()).items():
        parser.add_argument(f"--{field}", type=int, default=default)
    for field, default in vars(RestSettings()).items():
        parser.add_argument(f"--rest_{field}", type=type(default), default=default)
    parser.add_argument(
        "--request_log_dir", type=Path, help="log --model_name's requests here (none: no log)"
    )
    parser.add_argument(
        "--drift_file", type=Path, help="make monitor's distances, shown as Prometheus gauges"
    )
    for field, default in vars(RequestLogSettings()).items():
        parser.add_argument(f"--request_log_{field}", type=type(default), default=default)
    # TF Serving's flags of the same names (0: TensorFlow's choice, a thread per core). Twice
    # the cores between ops: a long op of a large request (decoding a 16-megapixel picture)
    # then leaves threads to small requests (p99 beside a heavy client: 1.5x alone, against 2.7x
    # with one thread per core; tests/bench/README.md).
    parser.add_argument(
        "--tensorflow_inter_op_parallelism", type=int, default=2 * (os.cpu_count() or 1)
    )
    parser.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0)
    parser.add_argument(
        "--enable_batching",
        action="store_true",
        help="run concurrent requests together (serving/batching.py)",
    )
    parser.add_argument(
        "--batching_parameters_file",
        type=Path,
        help="TF Serving's BatchingParameters text (default: serving/batching.py's defaults)",
    )
    return parser.parse_args()


def settings_of(cls, args: argparse.Namespace, prefix: str = ""):
    """A settings dataclass from the flags named after its fields."""
    return cls(**{field: getattr(args, prefix + field) for field in vars(cls())})


def start_models(args: argparse.Namespace, metrics: Metrics) -> ModelRegistry:
    """The models of the config file, or the one of --model_name and --model_base_path, loaded;
    a config file that TF Serving would refuse is refused (ConfigError)."""
    registry = ModelRegistry(
        args.poll_interval_s,
        on_load=lambda path, ok, _: metrics.record_load(str(path), ok),
        allow_labels_for_unavailable=args.allow_version_labels_for_unavailable_models,
    )
    if args.model_config_file:
        registry.apply(read_model_config(args.model_config_file))
        if args.model_name not in registry.names:
            log.warning(
                "--model_name %s is not in %s: the page, request log and corrections serve none",
                args.model_name,
                args.model_config_file,
            )
    else:  # the folder may not exist yet: it is served once a version appears
        registry.apply([ModelConfig(args.model_name, args.model_base_path.absolute())])
    return registry


def version_folders(configs: list[ModelConfig]) -> tuple:
    """What a refused config's labels may wait for: the folders in each base path."""

    def listing(base_path: Path) -> tuple:
        try:
            return tuple(sorted(path.name for path in base_path.iterdir()))
        except OSError:
            return ()

    return tuple(listing(config.base_path) for config in configs)


def watch_model_config(
    registry: ModelRegistry, path: Path, interval_s: float, stopping: threading.Event
) -> None:
    """Applies the config file's changes every `interval_s`, as TF Serving's
    --model_config_file_poll_wait_seconds does. A config refused leaves the running one, is
    logged once, and is tried again only once the file or the version folders it names change
    (not reloaded, and its new models loaded and dropped, at every poll)."""
    refused = None  # the last refusal: a file's error text, or (configs, version folders)
    while not stopping.wait(interval_s):
        try:
            configs = read_model_config(path)
        except ConfigError as error:
            if str(error) != refused:
                log.error("%s; the running configuration stays", error)
            refused = str(error)
            continue
        attempt = (configs, version_folders(configs))
        if configs == registry.configs or attempt == refused:
            continue
        try:
            registry.apply(configs)
            log.info("Reloaded %s: serving %s", path, registry.names)
        except Exception as error:  # a label refused, or whatever else one reload hit
            reason = error if isinstance(error, ConfigError) else f"{path}: {error!r}"
            log.error("%s; the running configuration stays", reason)
            refused = attempt


def serving_core(args: argparse.Namespace, registry: ModelRegistry, metrics: Metrics):
    """The core over `registry` with the limits, request log, corrections and batching the
    flags ask for."""
    request_log = corrections = batcher = None
    if args.request_log_dir:
        log_settings = settings_of(RequestLogSettings, args, "request_log_")
        request_log = RequestLog(args.request_log_dir, args.model_name, log_settings, metrics)
        corrections = Corrections(args.request_log_dir)
        log.info(
            "Logging %.0f %% of %s's requests to %s",
            100 * log_settings.sample_rate,
            args.model_name,
            args.request_log_dir,
        )
    if args.enable_batching:
        parameters = BatchingParameters()
        if args.batching_parameters_file:
            parameters = read_batching_parameters(args.batching_parameters_file)
        batcher = Batcher(parameters)
        # A batch gathers only requests that gRPC's threads have taken: at least a batch's worth.
        args.workers = max(args.workers, parameters.max_batch_size)
        log.info("Batching requests: %s", parameters)
    limits = settings_of(Limits, args)
    return ServingCore(
        registry, limits, metrics, request_log, corrections, batcher, args.model_name
    )


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("tornado").setLevel(logging.WARNING)  # a line per malformed request
    tf.config.threading.set_inter_op_parallelism_threads(args.tensorflow_inter_op_parallelism)
    tf.config.threading.set_intra_op_parallelism_threads(args.tensorflow_intra_op_parallelism)
    metrics = Metrics(args.drift_file)
    try:
        registry = start_models(args, metrics)
    except ConfigError as error:
        raise SystemExit(f"error: {error}") from None
    core = serving_core(args, registry, metrics)
    grpc_server, port = create_server(
        core, f"{args.host}:{args.port}", args.workers, args.max_concurrent_rpcs
    )
    rest_settings = settings_of(RestSettings, args, "rest_")
    rest = (
        create_rest_server(core, args.host, args.rest_api_port, rest_settings)
        if args.rest_api_port
        else None
    )
    kernels = "oneDNN" if _pywrap_util_port.IsMklEnabled() else "TensorFlow's own (oneDNN off)"
    log.info("TensorFlow kernels: %s", kernels)
    for name in registry.names:
        model = registry.model(name)
        versions = {v: s.state for v, s in model.states().items()} or "none yet"
        log.info("Serving model %s from %s (versions: %s)", name, model.base_path, versions)
    log.info(
        "gRPC on %s:%d%s",
        args.host,
        port,
        f", REST and the drawing page on http://{args.host}:{rest.port}/" if rest else "",
    )
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    if args.model_config_file and args.model_config_file_poll_wait_seconds > 0:
        watch = (registry, args.model_config_file, args.model_config_file_poll_wait_seconds)
        threading.Thread(target=watch_model_config, args=(*watch, stopping), daemon=True).start()
    stopping.wait()
    stop(args.drain_s, grpc_server, rest, core)


def stop(drain_s: float, grpc_server: grpc.Server, rest, core: ServingCore) -> None:
    """Refuses new requests, gives those in flight `drain_s`, then stops the rest."""
    log.info("Stopping: no new requests; up to %.0f s for those in flight", drain_s)
    grpc_stopped = grpc_server.stop(grace=drain_s)
    if rest:
        rest.stop(drain_s)
    grpc_stopped.wait()
    if core.batcher:
        core.batcher.stop()
    if core.request_log:
        core.request_log.close()
    core.models.stop()
    log.info("Stopped")


if __name__ == "__main__":
    main()
