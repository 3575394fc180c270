"""`make run`'s closing summary, from constructed results; its readers of ML Metadata on a
store that a killed run left; a console without gRPC's C++ lines."""

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.console import HARMLESS_WARNINGS, shown_on_console
from pipeline.local_runner import sqlite_metadata
from pipeline.results import PairedComparison, RunSummary, ingested_spans
from pipeline.run import print_summary
from pipeline.settings import Settings


def summary(**changes) -> RunSummary:
    facts = {
        "run_id": "run-1",
        "components": [],
        "accuracy": 0.99,
        "accuracy_change": None,
        "paired": None,
        "per_class_accuracy": {0: 1.0, 1: 0.98},
        "per_class_examples": {0: 250, 1: 250},
        "test_examples": 500,
        "blessed": True,
        "validation_failures": [],
        "pushed_path": Path("/served/1"),
        "artifact_uris": {},
        "examples_uris": [],
        "spans": [0],
        "warm_start_model": None,
        "class_names": ["zero", "one"],
    }
    return RunSummary(**{**facts, **changes})


def test_accuracy_with_count_and_interval_and_the_regression_numbers(capsys):
    paired = PairedComparison(baseline_only_correct=3, candidate_only_correct=4, p_value=0.773)
    print_summary(summary(accuracy_change=0.002, paired=paired), settings=Settings())
    out = capsys.readouterr().out
    assert "Test accuracy: 0.9900 on 500 examples (95 % interval 0.9768-0.9957)" in out
    assert "Per class (accuracy, test examples): 0: 1.000 (250), 1: 0.980 (250)" in out
    assert "+0.0020 accuracy; 3 test examples only it gets right, 4 only the candidate" in out
    assert "p = 0.773" in out and "no significant regression" in out


def test_a_class_without_test_examples_is_named(capsys):
    print_summary(
        summary(
            class_names=["zero", "one", "two"],
            per_class_accuracy={0: 1.0, 2: 0.98},
            per_class_examples={0: 250, 2: 250},
        ),
        settings=Settings(),
    )
    assert "the test split has no example of class(es) one" in capsys.readouterr().out


def test_a_store_that_a_first_run_left_without_types_reads_as_no_spans(tmp_path):
    """Killed just as ImportExampleGen began: its node context exists, no Examples type yet."""
    path = tmp_path / "metadata.sqlite"
    store = metadata_store.MetadataStore(sqlite_metadata(path))
    node_type = store.put_context_type(metadata_store_pb2.ContextType(name="node"))
    store.put_contexts(
        [metadata_store_pb2.Context(type_id=node_type, name="mnist.ImportExampleGen")]
    )
    assert ingested_spans(path, "mnist", "ImportExampleGen") == set()


# A gRPC server stopped while a call is in flight: the client's transport logs "Got goaway" at
# INFO through absl, which writes every level to stderr until it is initialised.
GOAWAY = """
import threading, time
from concurrent import futures
import grpc

def slow(request, context):
    time.sleep(2)
    return request

method = grpc.unary_unary_rpc_method_handler(slow)
handler = grpc.method_handlers_generic_handler("s", {"m": method})
server = grpc.server(futures.ThreadPoolExecutor(2), handlers=[handler])
port = server.add_insecure_port("127.0.0.1:0")
server.start()
channel = grpc.insecure_channel(f"127.0.0.1:{port}")
call = threading.Thread(target=lambda: channel.unary_unary("/s/m")(b"x"))
call.start()
time.sleep(0.5)
server.stop(grace=None)
call.join()
"""
CPP_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\]", re.MULTILINE)


def test_the_run_keeps_grpcs_cpp_lines_off_the_console():
    environment = {key: value for key, value in os.environ.items() if key != "GRPC_VERBOSITY"}

    def stderr(env: dict) -> str:
        command = [sys.executable, "-c", GOAWAY]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60).stderr

    # The scenario does print one, though under load its call can end without the transport
    # logging it ("Cancelling all calls" alone): up to three tries.
    assert any(CPP_LOG_LINE.search(stderr(environment)) for _ in range(3))
    assert os.environ["GRPC_VERBOSITY"] == "ERROR"  # set by importing pipeline.run
    assert not CPP_LOG_LINE.search(stderr({**environment, "GRPC_VERBOSITY": "ERROR"}))


def test_the_console_drops_only_the_named_warnings():
    def shown(message: str) -> bool:
        return shown_on_console(logging.LogRecord("tfx", logging.WARNING, "", 0, message, (), None))

    assert not any(shown(f"{pattern} (and the rest of the line)") for pattern in HARMLESS_WARNINGS)
    assert not shown("[latest_push_resolver] Input resolution error: ... returned None.")
    assert shown("Component Trainer failed: the data has 3 classes")
