"""`make bench-serving` (and part of `make bench`): the local server probed from outside, as a
separate process on ephemeral ports, with TF Serving's own messages.

1. Latency: batch-1 p50/p99 in-process (the signature called directly, in a process that starts
   TensorFlow as the server does), over gRPC and over REST; batch-64 throughput.
2. Hostile requests: a 367-byte Predict declaring 30,000 values, a real 20000x20000 PNG, a batch
   of 10,000 images: the time to refuse each and the server's RSS growth.
3. Fairness: 16 clients sending batch-1 requests for 20 s, alone and beside one client sending
   the largest valid requests (4 pictures of 16 megapixels): the small clients' p99.
4. Version churn: 8 clients for 30 s while versions are pushed, broken, fixed and deleted: failed
   requests, and answers from a version that was not on disk during the request.
5. The request log's cost: batch-1 p50 over gRPC and REST and batch-64 throughput on two servers
   side by side, one logging every request (serving/request_log.py), in alternating blocks.
6. A flood of 2,000 half-open REST connections (half announce a body and send one byte, half
   send nothing): the server's threads and RSS, a good request's latency during the flood, and
   how long until the server has closed them all. `make faults` asserts the outcome.

    python -m tests.bench.serving [--base_path outputs/serving_model/mnist_cnn]
"""

import argparse
import json
import os
import pickle
import resource
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from components.data.codecs import encode_png
from components.serving_check import free_port
from pipeline.demo import read_split
from pipeline.results import run_summary
from pipeline.settings import PROJECT_ROOT, Settings
from serving.client import RestClient
from serving.grpc_client import ServingClient
from serving.server import SERVING_ENVIRONMENT
from trainer.features import IMAGES_INPUT, SERVING_IMAGE_SIGNATURE


def percentiles_ms(samples: list[float]) -> dict:
    return {
        "p50_ms": round(float(np.percentile(samples, 50)) * 1000, 2),
        "p99_ms": round(float(np.percentile(samples, 99)) * 1000, 2),
    }


def timings(call, repeats: int) -> list[float]:
    call()  # warm-up
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


class ServerProcess:
    """`python -m serving.server` on ephemeral ports, as `make serve` runs it."""

    def __init__(self, base_path: Path, model_name: str, *flags: str):
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "serving.server", "--model_base_path", str(base_path)]
            + ["--model_name", model_name, "--port", str(self.grpc_port)]
            + ["--rest_api_port", str(self.rest_port), *flags],
            cwd=PROJECT_ROOT,
            stderr=self.log,
        )
        self.target = f"127.0.0.1:{self.grpc_port}"
        self.rest = f"127.0.0.1:{self.rest_port}"
        self.model_name = model_name
        with ServingClient(self.target, model_name, retries=10) as client:
            client.status()

    def _status(self, field: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise RuntimeError(f"no {field}")

    def rss_mb(self) -> float:
        return self._status("VmRSS") / 1024

    def threads(self) -> int:
        return self._status("Threads")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=120)


def latency(call_one, call_batch) -> dict:
    """Batch-1 percentiles and batch-64 throughput of two calls (one picture, 64 pictures)."""
    batch_s = timings(call_batch, 30)
    return {
        "batch_1": percentiles_ms(timings(call_one, 300)),
        "batch_64_images_per_s": round(64 / float(np.median(batch_s))),
    }


def signature_latency(model_dir: Path, images: list[bytes]) -> dict:
    """`latency` of `serving_image` of `model_dir` called directly."""
    signature = tf.saved_model.load(str(model_dir)).signatures[SERVING_IMAGE_SIGNATURE]
    one, batch = tf.constant(images[:1]), tf.constant(images[:64])
    return latency(
        lambda: signature(**{IMAGES_INPUT: one}), lambda: signature(**{IMAGES_INPUT: batch})
    )


def in_process_latency(model_dir: Path, images: list[bytes]) -> dict:
    """`signature_latency` in a child process with the server's SERVING_ENVIRONMENT: TensorFlow
    chooses its kernels as it loads, and this process may have loaded it otherwise."""
    with tempfile.TemporaryDirectory() as folder:
        request = Path(folder) / "images.pickle"
        request.write_bytes(pickle.dumps(images[:64]))
        child = subprocess.run(
            [sys.executable, "-m", "tests.bench.serving", "--in_process", str(model_dir)]
            + [str(request)],
            cwd=PROJECT_ROOT,
            env={**SERVING_ENVIRONMENT, **os.environ},  # as the server: the environment wins
            capture_output=True,
            text=True,
        )
    if child.returncode:
        raise RuntimeError(f"in-process latency failed: {child.stderr[-2000:]}")
    return json.loads(child.stdout.splitlines()[-1])


def bench_latency(server: ServerProcess, in_process: dict, images: list[bytes]) -> dict:
    """`in_process` (measured before the server started, not beside it), gRPC and REST."""
    results = {"in_process": in_process}
    with (
        ServingClient(server.target, server.model_name) as grpc_client,
        RestClient(server.rest, server.model_name) as rest_client,
    ):
        results["grpc"] = latency(
            lambda: grpc_client.predict_images(images[:1]),
            lambda: grpc_client.predict_images(images[:64]),
        )
        results["rest"] = latency(
            lambda: rest_client.predict_images(images[:1]),
            lambda: rest_client.predict_images(images[:64]),
        )
    p50 = {side: results[side]["batch_1"]["p50_ms"] for side in ("in_process", "grpc", "rest")}
    results["grpc_minus_in_process_p50_ms"] = round(p50["grpc"] - p50["in_process"], 2)
    results["rest_minus_grpc_p50_ms"] = round(p50["rest"] - p50["grpc"], 2)
    return results


def huge_png(width: int, height: int) -> bytes:
    """A real single-colour greyscale PNG, compressed row by row (never in memory whole)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    compressor, row, body = zlib.compressobj(9), b"\0" * (width + 1), []
    for _ in range(height):
        body.append(compressor.compress(row))
    body.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"".join(body))
        + chunk(b"IEND", b"")
    )


def predict_request(model_name: str, proto) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = SERVING_IMAGE_SIGNATURE
    request.inputs[IMAGES_INPUT].CopyFrom(proto)
    return request


def bench_hostile(server: ServerProcess, images: list[bytes]) -> dict:
    declared = tf.make_tensor_proto(images[:1])
    declared.tensor_shape.dim[0].size = 30000
    cases = {
        "declared_30000_values": predict_request(server.model_name, declared),
        "png_20000x20000": predict_request(
            server.model_name, tf.make_tensor_proto([huge_png(20000, 20000)])
        ),
        "batch_of_10000": predict_request(
            server.model_name, tf.make_tensor_proto(images[:1] * 10000)
        ),
    }
    results = {}
    with grpc.insecure_channel(
        server.target, options=[("grpc.max_send_message_length", -1)]
    ) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for name, request in cases.items():
            rss_before, seconds, codes = server.rss_mb(), [], set()
            for _ in range(5):
                started = time.perf_counter()
                try:
                    stub.Predict(request, timeout=60)
                    codes.add("OK")
                except grpc.RpcError as error:
                    codes.add(error.code().name)
                seconds.append(time.perf_counter() - started)
            results[name] = {
                "request_bytes": request.ByteSize(),
                "max_ms": round(max(seconds) * 1000, 1),
                "rss_growth_mb": round(server.rss_mb() - rss_before, 1),
                "status": sorted(codes),
            }
    return results


def hammer(target: str, model_name: str, images: list[bytes], until: float, out: dict) -> None:
    with ServingClient(target, model_name, retries=0) as client:
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                client.predict_images(images)
                out["seconds"].append(time.perf_counter() - started)
            except grpc.RpcError:
                out["failed"] += 1


def bench_fairness(server: ServerProcess, images: list[bytes], seconds: float = 20) -> dict:
    gradient = (np.add.outer(np.arange(4000), np.arange(4000)) % 256).astype(np.uint8)
    heavy = [encode_png(gradient)] * 4  # 64 megapixels: the largest valid request
    results = {}
    for phase, with_heavy in (("alone", False), ("beside_heavy_client", True)):
        until = time.monotonic() + seconds
        small = [{"seconds": [], "failed": 0} for _ in range(16)]
        big = {"seconds": [], "failed": 0}
        threads = [
            threading.Thread(
                target=hammer, args=(server.target, server.model_name, images[:1], until, s)
            )
            for s in small
        ]
        if with_heavy:
            threads.append(
                threading.Thread(
                    target=hammer, args=(server.target, server.model_name, heavy, until, big)
                )
            )
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        samples = [s for client in small for s in client["seconds"]]
        results[phase] = {
            "small_requests": len(samples),
            "small_failed": sum(client["failed"] for client in small),
            **percentiles_ms(samples),
        }
        if with_heavy:
            results[phase]["heavy_requests"] = len(big["seconds"])
            results[phase]["heavy_failed"] = big["failed"]
    results["p99_ratio"] = round(
        results["beside_heavy_client"]["p99_ms"] / results["alone"]["p99_ms"], 2
    )
    return results


def clients_for(target: str, model_name: str, images: list[bytes], clients: int, seconds: float):
    """`clients` threads each sending `images` per request for `seconds`: the latencies."""
    until = time.monotonic() + seconds
    outs = [{"seconds": [], "failed": 0} for _ in range(clients)]
    threads = [
        threading.Thread(target=hammer, args=(target, model_name, images, until, out))
        for out in outs
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [s for out in outs for s in out["seconds"]], sum(out["failed"] for out in outs)


def bench_batching(
    base_path: Path,
    model_name: str,
    images: list[bytes],
    clients: int = 32,
    seconds: float = 5,
    blocks: int = 8,
) -> dict:
    """`clients` clients each sending one picture per request, against a server without and one
    with `--enable_batching` (serving/batching_parameters.txt), both up side by side and taken
    in alternating blocks of `seconds` (a machine's load drifts over minutes; each block's
    ratio compares moments close together); the median of the blocks' ratios."""
    parameters = str(PROJECT_ROOT / "serving" / "batching_parameters.txt")
    flags = {
        "unbatched": (),
        "batched": ("--enable_batching", "--batching_parameters_file", parameters),
    }
    servers = {name: ServerProcess(base_path, model_name, *flag) for name, flag in flags.items()}
    samples = {name: [] for name in servers}
    failed = dict.fromkeys(servers, 0)
    ratios = {"throughput": [], "p99": []}
    try:
        for server in servers.values():  # warm: the first requests of a process are slow
            clients_for(server.target, model_name, images[:1], clients, 2)
        for block in range(blocks):
            rates, p99s = {}, {}
            order = list(servers) if block % 2 == 0 else list(reversed(servers))
            for name in order:
                latencies, failures = clients_for(
                    servers[name].target, model_name, images[:1], clients, seconds
                )
                samples[name] += latencies
                failed[name] += failures
                rates[name] = len(latencies) / seconds
                p99s[name] = float(np.percentile(latencies, 99))
            ratios["throughput"].append(rates["batched"] / rates["unbatched"])
            ratios["p99"].append(p99s["batched"] / p99s["unbatched"])
    finally:
        for server in servers.values():
            server.stop()
    results = {
        name: {
            "requests_per_s": round(len(samples[name]) / (seconds * blocks), 1),
            "failed": failed[name],
            **percentiles_ms(samples[name]),
        }
        for name in servers
    }
    results["throughput_ratio"] = round(float(np.median(ratios["throughput"])), 2)
    results["p99_ratio"] = round(float(np.median(ratios["p99"])), 2)
    results["block_throughput_ratios"] = [round(r, 2) for r in ratios["throughput"]]
    results["clients"], results["seconds"], results["blocks"] = clients, seconds, blocks
    return results


def bench_churn(
    base_path: Path, model_name: str, images: list[bytes], seconds: float = 30, clients: int = 8
) -> dict:
    """Push, break, fix and delete versions while `clients` predict; each answer's version must
    have been on disk at some moment of its request."""
    work = Path(tempfile.mkdtemp()) / model_name
    source = max((p for p in base_path.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    shutil.copytree(source, work / "1")
    server = ServerProcess(work, model_name, "--poll_interval_s", "0.5")
    history = [(time.monotonic(), {1})]  # (when, versions on disk from then on)
    lock = threading.Lock()

    def on_disk_now() -> set[int]:
        return {int(p.name) for p in work.iterdir() if p.name.isdigit()}

    def place(version: int, broken: bool = False) -> None:
        incoming = work.parent / f"incoming-{version}"
        if broken:
            incoming.mkdir()
            (incoming / "saved_model.pb").write_bytes(b"not a SavedModel")
        else:
            shutil.copytree(source, incoming)
        if (work / str(version)).exists():
            shutil.rmtree(work / str(version))
        incoming.rename(work / str(version))  # TF Serving expects versions to appear whole

    answers: list[tuple[float, float, int]] = []
    failed = [0]
    until = time.monotonic() + seconds

    def client() -> None:
        with ServingClient(server.target, model_name, retries=0) as serving_client:
            while time.monotonic() < until:
                started = time.monotonic()
                try:
                    version = serving_client.predict_images(images[:4]).model_version
                    with lock:
                        answers.append((started, time.monotonic(), version))
                except grpc.RpcError:
                    with lock:
                        failed[0] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    operations, version = [], 1
    while time.monotonic() < until - 3:
        time.sleep(2)
        step = len(operations) % 4
        if step == 0:  # a new version
            version += 1
            place(version)
            operations.append(f"push {version}")
        elif step == 1:  # a broken one above it
            place(version + 1, broken=True)
            operations.append(f"push broken {version + 1}")
        elif step == 2:  # fixed under the same number
            version += 1
            place(version)
            operations.append(f"fix {version}")
        else:  # the served (highest) version deleted
            shutil.rmtree(work / str(version))
            operations.append(f"delete {version}")
            version = max(on_disk_now())
        with lock:
            history.append((time.monotonic(), on_disk_now()))
    for thread in threads:
        thread.join()
    server.stop()

    def on_disk_during(started: float, ended: float) -> set[int]:
        versions = set()
        for index, (when, on_disk) in enumerate(history):
            next_change = history[index + 1][0] if index + 1 < len(history) else float("inf")
            if when <= ended and next_change >= started:
                versions |= on_disk
        return versions

    stale = sum(v not in on_disk_during(s, e) for s, e, v in answers)
    shutil.rmtree(work.parent, ignore_errors=True)
    return {
        "clients": clients,
        "seconds": seconds,
        "operations": operations,
        "requests_ok": len(answers),
        "requests_failed": failed[0],
        "answers_from_versions_not_on_disk": stale,
        "versions_seen": sorted({v for _, _, v in answers}),
    }


def _measure_block(server: ServerProcess, images: list[bytes]) -> dict[str, float]:
    """One block's batch-1 p50s (ms) over gRPC and REST and batch-64 images/s."""
    with (
        ServingClient(server.target, server.model_name) as grpc_client,
        RestClient(server.rest, server.model_name) as rest_client,
    ):
        grpc_one = timings(lambda: grpc_client.predict_images(images[:1]), 40)
        rest_one = timings(lambda: rest_client.predict_images(images[:1]), 40)
        batch = timings(lambda: grpc_client.predict_images(images[:64]), 4)
    return {
        "grpc_p50_ms": float(np.median(grpc_one)) * 1000,
        "rest_p50_ms": float(np.median(rest_one)) * 1000,
        "batch_64_images_per_s": 64 / float(np.median(batch)),
    }


def bench_logging_cost(base_path: Path, model_name: str, images: list[bytes]) -> dict:
    """The same requests to a server without and one with a request log at sample rate 1.0,
    in 20 alternating blocks; each figure is the median over blocks, and the cost the median
    of the blocks' ratios, so that a slow spell of the machine counts against neither."""
    with tempfile.TemporaryDirectory() as logs:
        servers = {
            "plain": ServerProcess(base_path, model_name),
            "logging": ServerProcess(base_path, model_name, "--request_log_dir", logs),
        }
        try:
            blocks = [
                {name: _measure_block(server, images) for name, server in servers.items()}
                for _ in range(20)
            ]
        finally:
            for server in servers.values():
                server.stop()
        logged = sum(1 for _ in Path(logs).glob("requests-*"))
    keys = list(blocks[0]["plain"])
    result = {
        name: {key: round(float(np.median([b[name][key] for b in blocks])), 2) for key in keys}
        for name in servers
    }
    result["cost"] = {
        key: round(float(np.median([b["logging"][key] / b["plain"][key] for b in blocks])) - 1, 3)
        for key in keys
    }
    return {**result, "log_files": logged}


def half_open(port: int, index: int, model_name: str) -> socket.socket:
    """A connection that holds the server: headers announcing a body, then one byte of it (odd
    `index`), or nothing at all."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    if index % 2:
        connection.sendall(
            f"POST /v1/models/{model_name}:predict HTTP/1.1\r\nHost: flood\r\n"
            "Content-Length: 1000\r\n\r\n{".encode()
        )
    return connection


def seconds_until_closed(connections: list[socket.socket], limit_s: float) -> float | None:
    """Seconds until the server has closed every connection (None: not within `limit_s`)."""
    started = time.monotonic()
    with selectors.DefaultSelector() as selector:
        for connection in connections:
            connection.setblocking(False)
            selector.register(connection, selectors.EVENT_READ)
        open_count = len(connections)
        while open_count and time.monotonic() - started < limit_s:
            for key, _ in selector.select(timeout=1.0):
                try:
                    closed = not key.fileobj.recv(65536)  # a refusal's answer, then the end
                except ConnectionResetError:
                    closed = True
                if closed:
                    selector.unregister(key.fileobj)
                    open_count -= 1
    return None if open_count else round(time.monotonic() - started, 1)


def bench_flood(server: ServerProcess, images: list[bytes], count: int = 2000) -> dict:
    """`count` half-open connections at once, and a client that wants an answer meanwhile."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 256:  # this process's sockets; the server holds at most its cap
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 256), hard))
    threads, rss = server.threads(), server.rss_mb()
    good, flood = [], []
    with RestClient(server.rest, server.model_name) as client:
        try:
            started = time.monotonic()
            for index in range(count):
                flood.append(half_open(server.rest_port, index, server.model_name))
                if index % 100 == 99:
                    good += timings(lambda: client.predict_images(images[:1]), 1)
            opened_s = time.monotonic() - started
            during = {"threads": server.threads(), "rss_mb": server.rss_mb()}
            good += timings(lambda: client.predict_images(images[:1]), 20)
            closed_s = seconds_until_closed(flood, limit_s=90)
        finally:
            for connection in flood:
                connection.close()
    return {
        "connections": count,
        "opened_in_s": round(opened_s, 1),
        "threads_before": threads,
        "threads_during": during["threads"],
        "rss_growth_mb": round(during["rss_mb"] - rss, 1),
        "good_requests": len(good),
        "good_p50_ms": percentiles_ms(good)["p50_ms"],
        "good_max_ms": round(max(good) * 1000, 2),
        "all_closed_after_s": closed_s,
    }


def bench_all(base_path: Path, images: list[bytes], model_name: str) -> dict:
    version = max(int(p.name) for p in base_path.iterdir() if p.name.isdigit())
    print("Serving: latency in-process, gRPC and REST...", flush=True)
    in_process = in_process_latency(base_path / str(version), images)
    server = ServerProcess(base_path, model_name)
    try:
        results = {"latency": bench_latency(server, in_process, images)}
        print("Serving: hostile requests...", flush=True)
        results["hostile"] = bench_hostile(server, images)
        print("Serving: 16 small clients, alone and beside a heavy one...", flush=True)
        results["fairness"] = bench_fairness(server, images)
        print("Serving: 2,000 half-open REST connections...", flush=True)
        results["flood"] = bench_flood(server, images)
    finally:
        server.stop()
    print("Serving: version churn under load...", flush=True)
    results["churn"] = bench_churn(base_path, model_name, images)
    print("Serving: the request log's cost, side by side...", flush=True)
    results["request_log"] = bench_logging_cost(base_path, model_name, images)
    print("Serving: 32 clients of one picture each, without and with batching...", flush=True)
    results["batching"] = bench_batching(base_path, model_name, images)
    return results


def table(header: list[str], rows: dict[str, dict], keys: list[str]) -> list[str]:
    """A markdown table: one row per name, with its values of `keys`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(str(row[key]) for key in keys) + " |")
    return lines


def markdown(results: dict) -> list[str]:
    latency, hostile = results["latency"], results["hostile"]
    fairness, churn, flood = results["fairness"], results["churn"], results["flood"]
    request_log = results["request_log"]
    lines = [
        "",
        "## Serving (`serving_image`; the local server as its own process)",
        "",
        "| path | batch 1 p50 (ms) | batch 1 p99 (ms) | batch 64 images/s |",
        "|---|---|---|---|",
    ]
    for side in ("in_process", "grpc", "rest"):
        b = latency[side]["batch_1"]
        lines.append(
            f"| {side} | {b['p50_ms']} | {b['p99_ms']} | {latency[side]['batch_64_images_per_s']} |"
        )
    lines += [
        "",
        f"gRPC minus in-process p50: {latency['grpc_minus_in_process_p50_ms']} ms "
        "(target: within 2 ms); "
        f"REST minus gRPC p50: {latency['rest_minus_grpc_p50_ms']} ms (target: within 3 ms).",
        "",
        "Hostile requests (5 each; target: refused in under 50 ms, RSS growth under 50 MB):",
        "",
        "| request | bytes | slowest answer (ms) | RSS growth (MB) | status |",
        "|---|---|---|---|---|",
    ]
    for name, h in hostile.items():
        lines.append(
            f"| {name} | {h['request_bytes']} | {h['max_ms']} | {h['rss_growth_mb']} "
            f"| {', '.join(h['status'])} |"
        )
    alone, beside = fairness["alone"], fairness["beside_heavy_client"]
    lines += [
        "",
        f"Fairness, 16 clients of batch-1 requests for 20 s: alone p50 {alone['p50_ms']} ms, "
        f"p99 {alone['p99_ms']} ms ({alone['small_requests']} requests, {alone['small_failed']} "
        f"failed); beside one client sending 64-megapixel requests ({beside['heavy_requests']} "
        f"answered, {beside['heavy_failed']} failed): p50 {beside['p50_ms']} ms, p99 "
        f"{beside['p99_ms']} ms ({beside['small_requests']} requests, {beside['small_failed']} "
        f"failed); p99 ratio {fairness['p99_ratio']} (target: at most 3).",
        "",
        f"Version churn, {churn['clients']} clients for {churn['seconds']} s "
        f"({', '.join(churn['operations'])}): {churn['requests_ok']} requests answered, "
        f"{churn['requests_failed']} failed, {churn['answers_from_versions_not_on_disk']} answered "
        f"by a version not on disk during the request; versions seen {churn['versions_seen']}.",
        "",
        f"Flood of {flood['connections']} half-open REST connections (opened in "
        f"{flood['opened_in_s']} s): server threads {flood['threads_before']} before, "
        f"{flood['threads_during']} during; RSS growth {flood['rss_growth_mb']} MB; "
        f"{flood['good_requests']} good requests meanwhile, p50 {flood['good_p50_ms']} ms, "
        f"slowest {flood['good_max_ms']} ms; all closed by the server after "
        f"{flood['all_closed_after_s']} s.",
        "",
        "Request log at sample rate 1.0 (two servers side by side, alternating blocks; target: "
        "at most 5 % cost):",
        "",
        *table(
            ["server", "gRPC batch 1 p50 (ms)", "REST batch 1 p50 (ms)", "batch 64 images/s"],
            {name: request_log[name] for name in ("plain", "logging")},
            ["grpc_p50_ms", "rest_p50_ms", "batch_64_images_per_s"],
        ),
    ]
    cost = request_log["cost"]
    lines += [
        "",
        f"Cost: gRPC p50 {cost['grpc_p50_ms']:+.1%}, REST p50 {cost['rest_p50_ms']:+.1%}, "
        f"batch-64 throughput {cost['batch_64_images_per_s']:+.1%}.",
    ]
    batching = results["batching"]
    lines += [
        "",
        f"Batching, {batching['clients']} clients of one picture per request, "
        f"{batching['blocks']} alternating blocks of {batching['seconds']:.0f} s each way "
        "(target: throughput at least 2x, p99 at most 1.5x):",
        "",
        *table(
            ["server", "requests/s", "p50 (ms)", "p99 (ms)", "failed"],
            {name: batching[name] for name in ("unbatched", "batched")},
            ["requests_per_s", "p50_ms", "p99_ms", "failed"],
        ),
        "",
        f"Throughput {batching['throughput_ratio']}x, p99 {batching['p99_ratio']}x (medians of "
        f"the blocks' ratios; throughput per block: {batching['block_throughput_ratios']}).",
    ]
    return lines


def main() -> None:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base_path", type=Path, default=settings.serving_model_dir)
    parser.add_argument(
        "--in_process",
        nargs=2,
        type=Path,
        metavar=("MODEL_DIR", "IMAGES"),
        help="print signature_latency as JSON; IMAGES is a pickled list of encoded pictures "
        "(how in_process_latency runs)",
    )
    args = parser.parse_args()
    if args.in_process:
        model_dir, request = args.in_process
        print(json.dumps(signature_latency(model_dir, pickle.loads(request.read_bytes()))))
        return
    summary = run_summary(settings.metadata_path)
    images, _ = read_split(summary.examples_uris, "test")
    results = bench_all(args.base_path, images, settings.model_name)
    out = settings.output_dir / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "serving.json").write_text(json.dumps(results, indent=2))
    text = "\n".join(markdown(results)) + "\n"
    (out / "serving.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
