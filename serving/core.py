"""What the gRPC and the REST front ends share: finding the version and signature a request
names, checking its inputs against the signature and the limits before any decoding, running
the model with bounded work, and turning every refusal into a status with a message about the
request (never TensorFlow's internal text)."""

import threading
import time
import warnings
from collections.abc import Callable

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from serving.batching import Batcher, BatchQueueFull
from serving.corrections import CorrectionError, Corrections
from serving.limits import LimitError, Limits, check_images
from serving.metrics import Metrics
from serving.model_registry import ModelRegistry, UnknownLabel
from serving.model_store import LoadedVersion
from serving.request_log import RequestLog
from trainer.features import (
    CLASS_NAME_OUTPUT,
    CLASS_NAMES_ASSET,
    DEFAULT_MODEL_NAME,
    DIGITS_PROFILE,
    EXAMPLES_INPUT,
    IMAGE_KEY,
    IMAGE_PROFILE_ASSET,
    SERVING_DEFAULT_SIGNATURE,
    ImageProfile,
)

# Large requests run in chunks of at most CHUNK pictures and CHUNK_PIXELS pixels (a larger
# picture alone), one large request at a time: a small request then waits behind one chunk at
# most, never behind a whole large batch or several large pictures decoding at once.
CHUNK = 64
CHUNK_PIXELS = 1_000_000
# protobuf's C++ parser warns, rather than fails, where bytes end a message early; such bytes
# are refused below by the count of bytes parsed.
warnings.filterwarnings("ignore", message="Unexpected end-group tag", category=RuntimeWarning)


class ServingError(Exception):
    """A request the server refuses, with the gRPC status code to refuse it with."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def images_of(input_name: str, values: list[bytes]) -> list[bytes]:
    """The encoded pictures in an input: the values themselves, or each tf.Example's image."""
    if input_name != EXAMPLES_INPUT:
        return values
    images = []
    for index, value in enumerate(values):
        example = example_pb2.Example()
        try:
            parsed = example.ParseFromString(value)
        except DecodeError:
            parsed = -1
        if parsed != len(value):
            raise invalid(f"{input_name}[{index}] is not a serialized tf.Example")
        feature = example.features.feature.get(IMAGE_KEY)
        if feature is None or len(feature.bytes_list.value) != 1:
            raise invalid(f"{input_name}[{index}] has no {IMAGE_KEY!r} feature of one bytes value")
        images.append(feature.bytes_list.value[0])
    return images


def undecodable(input_name: str, images: list[bytes], first_index: int) -> str:
    """Names the first picture TensorFlow cannot decode, for a batch that failed."""
    for index, data in enumerate(images, start=first_index):
        try:
            tf.io.decode_image(data, expand_animations=False)  # any channels: GIF has 3
        except tf.errors.OpError:
            return f"{input_name}[{index}] could not be decoded as an image"
    return f"Input {input_name!r} could not be processed by the model"


def chunks(pixels: list[int]) -> list[tuple[int, int]]:
    """(start, end) of consecutive pictures, at most CHUNK of them and CHUNK_PIXELS in all
    (a larger picture alone)."""
    bounds, start, total = [], 0, 0
    for index, count in enumerate(pixels):
        if index > start and (index - start == CHUNK or total + count > CHUNK_PIXELS):
            bounds.append((start, index))
            start, total = index, 0
        total += count
    return [*bounds, (start, len(pixels))]


class ServingCore:
    """The served models behind both front ends, with their limits and metrics; the requests
    for `logged_model` go to the request log and may be corrected."""

    def __init__(
        self,
        models: ModelRegistry,
        limits: Limits | None = None,
        metrics: Metrics | None = None,
        request_log: RequestLog | None = None,
        corrections: Corrections | None = None,
        batcher: Batcher | None = None,
        logged_model: str = DEFAULT_MODEL_NAME,
    ):
        self.models = models
        self.logged_model = logged_model
        self.limits = limits or Limits()
        self.metrics = metrics or Metrics()
        self.request_log = request_log
        self.corrections = corrections
        self.batcher = batcher
        self._large = threading.Semaphore(1)

    def measured(self, model_name: str, api: str, entrypoint: str, call: Callable):
        """Runs `call`, counting its status and latency under TF Serving's metric names."""
        started = time.perf_counter()
        status = "OK"
        try:
            return call()
        except ServingError as error:
            status = error.code.name
            raise
        finally:
            self.metrics.record_request(
                model_name, status, api, entrypoint, time.perf_counter() - started
            )

    def version(self, name: str, version: int | None, label: str | None = None) -> LoadedVersion:
        """The version a request asks for: INVALID_ARGUMENT for an unknown label, NOT_FOUND for
        models and versions not served (TF Serving's codes and words)."""
        if not name:
            raise invalid("ModelSpec has no name specified.")
        try:
            return self.models.resolve(name, version, label)
        except UnknownLabel as error:
            raise invalid(str(error)) from None
        except LookupError as error:
            raise ServingError(grpc.StatusCode.NOT_FOUND, str(error)) from None

    def signature(self, loaded: LoadedVersion, name: str):
        name = name or SERVING_DEFAULT_SIGNATURE
        if name not in loaded.model.signatures:
            raise invalid(
                f"Serving signature name: {name!r} not found in signature def; "
                f"available: {sorted(loaded.model.signatures)}"
            )
        return name, loaded.model.signatures[name]

    def predict(
        self,
        name: str,
        loaded: LoadedVersion,
        signature_name: str,
        inputs: dict[str, list[bytes]],
    ) -> tuple[str, dict[str, np.ndarray], str | None]:
        """Runs a signature of model `name`'s version `loaded` (resolved once, by `version`, as
        the request arrived) on lists of string values, one list per input name: the signature's
        name, its outputs and a request id. Answered requests for the logged model go to the
        request log and get a request id that a correction can name (None where corrections are
        not kept)."""
        signature_name, signature = self.signature(loaded, signature_name)
        _, specs = signature.structured_input_signature
        if set(inputs) != set(specs):
            raise invalid(
                f"Request inputs {sorted(inputs)} do not match the signature's {sorted(specs)}"
            )
        sizes = {len(values) for values in inputs.values()}
        if len(sizes) != 1 or 0 in sizes:
            raise invalid(
                f"Inputs must hold the same number of values, at least one: {sorted(sizes)}"
            )
        pixels = np.zeros(sizes.pop(), np.int64)
        for input_name, values in inputs.items():
            images = images_of(input_name, values)
            try:
                pixels += check_images(input_name, images, self.limits)
            except LimitError as error:
                raise invalid(str(error)) from None
        bounds = chunks(pixels.tolist())
        # Batched with other requests while a full batch of such stays within one chunk.
        batcher = self.batcher
        if batcher and int(pixels.sum()) * batcher.parameters.max_batch_size <= CHUNK_PIXELS:
            try:
                outputs = batcher.run(
                    (name, loaded.version, id(loaded), signature_name),  # id: a replaced folder
                    lambda batch: self._run(signature, batch, 0, len(next(iter(batch.values())))),
                    inputs,
                )
            except BatchQueueFull as error:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, str(error)) from None
        elif len(bounds) == 1:
            outputs = self._run(signature, inputs, *bounds[0])
        else:
            with self._large:
                parts = [self._run(signature, inputs, start, end) for start, end in bounds]
            outputs = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if name != self.logged_model:
            return signature_name, outputs, None
        if self.request_log:
            self.request_log.record(loaded.version, signature_name, inputs, outputs)
        request_id = None
        if self.corrections and CLASS_NAME_OUTPUT in outputs:
            served = [name.decode() for name in outputs[CLASS_NAME_OUTPUT].tolist()]
            request_id = self.corrections.remember(loaded.version, signature_name, images, served)
        return signature_name, outputs, request_id

    def correct(self, name: str, correction: dict) -> dict:
        """A person's "that was a 7" for picture `index` of an answered request
        (serving/corrections.py): `{"request_id": ..., "index": 0, "class_name": "7"}`, or
        `"class_id": 7`."""
        if name != self.logged_model:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND, f"Corrections are kept for {self.logged_model} only"
            )
        if self.corrections is None:
            raise invalid("This server keeps no corrections: start it with --request_log_dir")
        request_id, index = correction.get("request_id"), correction.get("index", 0)
        class_name, class_id = correction.get("class_name"), correction.get("class_id")
        if (
            not isinstance(request_id, str)
            or type(index) is not int
            or (class_name is None) == (class_id is None)
        ):
            raise invalid(
                'A correction is {"request_id": string, "index": integer (default 0), '
                '"class_name": string} or "class_id": integer in place of "class_name"'
            )
        try:
            answered = self.corrections.answered(request_id)
            known = self.class_names(answered.version)
            if class_id is not None:
                if type(class_id) is not int or not 0 <= class_id < len(known):
                    raise CorrectionError(f"No class id {class_id!r}: the model has {len(known)}")
                class_name = known[class_id]
            corrected = self.corrections.correct(request_id, index, class_name, known)
        except CorrectionError as error:
            raise invalid(str(error)) from None
        return {
            "request_id": corrected.request_id,
            "index": corrected.index,
            "served_class_name": corrected.served_class_name,
            "class_name": corrected.class_name,
            "model_version": corrected.model_version,
        }

    def class_names(self, version: int) -> list[str]:
        """The class names a version was exported with (its `class_names.txt` asset)."""
        try:
            base_path = self.models.model(self.logged_model).base_path
        except LookupError as error:
            raise CorrectionError(str(error)) from None
        path = base_path / str(version) / "assets" / CLASS_NAMES_ASSET
        try:
            return path.read_text().splitlines()
        except OSError:
            raise CorrectionError(f"Version {version} has no class names ({path})") from None

    def image_profile(self) -> ImageProfile:
        """The image profile of the version served now (its `image_profile.json` asset): digits
        where there is none, or no version is served yet."""
        try:
            base_path = self.models.model(self.logged_model).base_path
            loaded = self.version(self.logged_model, None)
        except (LookupError, ServingError):
            return DIGITS_PROFILE
        path = base_path / str(loaded.version) / "assets" / IMAGE_PROFILE_ASSET
        return ImageProfile.from_json(path.read_text()) if path.is_file() else DIGITS_PROFILE

    def _run(self, signature, inputs: dict[str, list[bytes]], start: int, end: int) -> dict:
        try:
            outputs = signature(
                **{k: tf.constant(v[start:end], tf.string) for k, v in inputs.items()}
            )
        except tf.errors.InvalidArgumentError:  # bytes with an image header that do not decode
            (input_name, values), *_ = inputs.items()
            images = images_of(input_name, values[start:end])
            raise invalid(undecodable(input_name, images, start)) from None
        return {key: value.numpy() for key, value in outputs.items()}

    def status(self, name: str, version: int | None) -> get_model_status_pb2.GetModelStatusResponse:
        """Every version on disk of a model (also where the request names a label, as in TF
        Serving), or the one `version`."""
        try:
            states = self.models.model(name).states()
        except LookupError:
            states = {}
        if not states:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {name}"
            )
        if version is not None:
            if version not in states:
                raise ServingError(
                    grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model {name}"
                )
            states = {version: states[version]}
        response = get_model_status_pb2.GetModelStatusResponse()
        state_value = get_model_status_pb2.ModelVersionStatus.State.Value
        for number, state in sorted(states.items(), reverse=True):
            status = response.model_version_status.add(
                version=number, state=state_value(state.state)
            )
            status.status.SetInParent()  # TF Serving always reports one, OK by default
            if state.error:
                status.status.error_code = grpc.StatusCode.UNKNOWN.value[0]
                status.status.error_message = state.error
        return response

    def metadata(
        self, name: str, version: int | None, label: str | None = None
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        loaded = self.version(name, version, label)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for signature_name, signature_def in loaded.signature_defs.items():
            signature_map.signature_def[signature_name].CopyFrom(signature_def)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = name
        response.model_spec.version.value = loaded.version
        packed = any_pb2.Any()
        packed.Pack(signature_map)
        response.metadata["signature_def"].CopyFrom(packed)
        return response
