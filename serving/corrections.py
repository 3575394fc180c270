"""Corrections: a person says "that was a 7" for an answer the server gave, and the picture with
its right label becomes training data (`make span-from-requests`) and a measured accuracy
(`make monitor`).

Every answered Predict gets a request id (REST: the `X-Request-Id` header; gRPC: the
`x-request-id` trailing metadata). The server keeps the most recent answers in memory, bounded
by count and bytes; a correction names the id, the picture's index in the request and the right
class, and is appended, self-contained (the picture, the served and the right class, the model
version), as one JSON line to `<request log dir>/corrections.jsonl`. Each correction opens and
closes the file, so `make span-from-requests` can move it away while the server runs.
"""

import base64
import collections
import dataclasses
import json
import secrets
import threading
import time
from pathlib import Path

CORRECTIONS_FILE = "corrections.jsonl"


class CorrectionError(ValueError):
    """A correction the server cannot take: unknown request, index or class (HTTP 400)."""


@dataclasses.dataclass(frozen=True)
class Answered:
    version: int
    signature_name: str
    images: list[bytes]  # encoded pictures (those inside tf.Examples for serving_default)
    class_names: list[str]  # served, one per picture
    size: int


@dataclasses.dataclass(frozen=True)
class Correction:
    request_id: str
    index: int
    image: bytes
    served_class_name: str
    class_name: str
    label: int
    model_version: int
    seconds: int


class Corrections:
    """Recent answers, by request id, and the corrections file they are corrected into."""

    def __init__(self, directory: Path, max_answers: int = 10_000, max_bytes: int = 64 * 2**20):
        self.path = directory / CORRECTIONS_FILE
        self.max_answers, self.max_bytes = max_answers, max_bytes
        self._answers: collections.OrderedDict[str, Answered] = collections.OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def remember(
        self, version: int, signature_name: str, images: list[bytes], class_names: list[str]
    ) -> str:
        """On the request path: the new request id; the oldest answers make room."""
        request_id = secrets.token_hex(8)
        size = sum(map(len, images))
        answered = Answered(version, signature_name, images, class_names, size)
        with self._lock:
            self._answers[request_id] = answered
            self._bytes += size
            while len(self._answers) > self.max_answers or self._bytes > self.max_bytes:
                _, oldest = self._answers.popitem(last=False)
                self._bytes -= oldest.size
        return request_id

    def answered(self, request_id: str) -> Answered:
        with self._lock:
            answered = self._answers.get(request_id)
        if answered is None:
            raise CorrectionError(
                f"Unknown request id {request_id!r}: the server keeps the last "
                f"{self.max_answers} answers since it started"
            )
        return answered

    def correct(
        self, request_id: str, index: int, class_name: str, known_classes: list[str]
    ) -> Correction:
        """Appends the correction of picture `index` of request `request_id`."""
        answered = self.answered(request_id)
        if not 0 <= index < len(answered.class_names):
            raise CorrectionError(
                f"Request {request_id} holds {len(answered.class_names)} pictures: no index {index}"
            )
        if class_name not in known_classes:
            raise CorrectionError(
                f"Class {class_name!r} is not one of the model's: {', '.join(known_classes)}"
            )
        correction = Correction(
            request_id,
            index,
            answered.images[index],
            answered.class_names[index],
            class_name,
            known_classes.index(class_name),
            answered.version,
            int(time.time()),
        )
        line = json.dumps(
            {**dataclasses.asdict(correction), "image": base64.b64encode(correction.image).decode()}
        )
        with self._lock, open(self.path, "a") as file:  # one whole line per write
            file.write(line + "\n")
        return correction


def read_corrections(path: Path) -> tuple[list[Correction], int]:
    """(the corrections in a corrections file, the number of lines that are none: a line cut
    by a full disk or a kill)."""
    corrections, bad = [], 0
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            fields = json.loads(line)
            fields["image"] = base64.b64decode(fields["image"], validate=True)
            corrections.append(Correction(**fields))
        except (ValueError, TypeError, KeyError):
            bad += 1
    return corrections, bad
