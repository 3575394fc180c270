"""A child started with start_child ends with the process that started it, even on kill -9."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from pipeline.settings import PROJECT_ROOT

PARENT = textwrap.dedent(
    """
    import sys, time
    from components.child_process import start_child

    child = start_child([sys.executable, "-c", "import time; time.sleep(600)"])
    print(child.pid, flush=True)
    time.sleep(600)
    """
)


def alive(pid: int) -> bool:
    """Running: neither gone nor a zombie that no init has reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_the_child_dies_when_its_parent_is_killed(tmp_path):
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
    )
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not alive(child):
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the child outlived its parent")


BUSY_GRPC_PARENT = textwrap.dedent(
    """
    import subprocess, sys, threading
    from concurrent import futures
    import grpc
    from components.child_process import start_child

    server = grpc.server(futures.ThreadPoolExecutor(2))
    channel = grpc.insecure_channel(f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}")
    server.start()
    call = channel.unary_unary("/no.Such/Method")
    done = threading.Event()

    def busy():  # gRPC threads at work while children start, as Beam's are in a run
        while not done.is_set():
            try:
                call(b"", timeout=0.01)
            except grpc.RpcError:
                pass

    threads = [threading.Thread(target=busy) for _ in range(2)]
    for thread in threads:
        thread.start()
    for _ in range(10):
        child = start_child([sys.executable, "-c", "print('ok')"], stdout=subprocess.PIPE)
        print(child.communicate()[0].decode().strip(), flush=True)
    done.set()
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_children_start_cleanly_beside_busy_grpc_threads():
    """A fork (what a preexec_fn forces) beside gRPC's threads ran gRPC's fork handlers: they
    printed to the console and broke the serving check's server on CI."""
    parent = subprocess.run(
        [sys.executable, "-c", BUSY_GRPC_PARENT],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert parent.returncode == 0, parent.stderr[-2000:]
    assert parent.stdout.split() == ["ok"] * 10
    assert "fork" not in parent.stderr, parent.stderr[-2000:]
