"""Shared by the benches: run the emulator CLI in a child process; measure memory."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2

API_KEY = "bench-key"


def rss_mb() -> float:
    """Resident memory of this process in MB (psutil comes with Airflow)."""
    import psutil

    return float(psutil.Process().memory_info().rss) / 1e6


def trim_heap() -> None:
    """Give freed heap back to the OS (glibc), so a baseline is what the process really holds."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL(name).malloc_trim(0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def emulator_process(*args: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``mistral-batch-emulator`` on a free loopback port; yield its URL and process."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mistral_batch_emulator.cli",
        "--port",
        str(port),
        "--api-key",
        API_KEY,
        *args,
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx2.get(f"{base_url}/v1/files", headers={"Authorization": f"Bearer {API_KEY}"})
                break
            except httpx2.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the emulator did not start") from None
                time.sleep(0.1)
        yield base_url, process
    finally:
        process.terminate()
        process.wait(timeout=30)
