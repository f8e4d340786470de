"""A chat-completions server that answers every request after a fixed delay: a slow model.

Run as a child process (``python -m benchmarks.slow_chat_server --delay 2``); it prints
``PORT <n>`` once listening on loopback. An asyncio protocol per connection and a timer per
request, HTTP/1.1 keep-alive, so thousands of requests can wait at once.
``POST .../chat/completions`` answers 200 with a valid completion and usage after ``--delay``
seconds; ``GET /stats`` answers at once with
``{"requests": ..., "in_flight": ..., "peak_in_flight": ...}`` and ``GET /stats?reset=1``
also resets the count and the peak. The server stops on SIGTERM or SIGINT.

A benchmark starts it with :func:`slow_server` (stdlib only: the child imports nothing else).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMPLETION = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "model": "slow-bench-model",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Done: here is your summary."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 120, "completion_tokens": 8, "total_tokens": 128},
}


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.in_flight = 0
        self.peak_in_flight = 0

    def as_json(self) -> bytes:
        return json.dumps(
            {
                "requests": self.requests,
                "in_flight": self.in_flight,
                "peak_in_flight": self.peak_in_flight,
            }
        ).encode()


def response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


@functools.lru_cache(maxsize=2)
def completion(created: int) -> bytes:
    """The whole answer to a completion request in second ``created`` (built once a second:
    the server's own CPU shares the machine with the worker it measures)."""
    return response("200 OK", json.dumps({**COMPLETION, "created": created}).encode())


class Connection(asyncio.Protocol):
    """One client connection: requests parsed as they arrive, each answered after the delay
    by a timer (no task, no stream: the server's own CPU shares the machine with the worker
    it measures)."""

    def __init__(self, stats: Stats, delay: float) -> None:
        self.stats = stats
        self.delay = delay
        self.buffer = bytearray()
        self.pending: set[asyncio.TimerHandle] = set()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return  # the body is still on its way
            del self.buffer[: end + 4 + length]
            method, target = lines[0].split(" ")[:2]
            self.request(method, target)

    def request(self, method: str, target: str) -> None:
        assert self.transport is not None
        stats = self.stats
        if method == "POST" and target.endswith("/chat/completions"):
            stats.requests += 1
            stats.in_flight += 1
            stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
            loop = asyncio.get_running_loop()
            handle = loop.call_later(self.delay, lambda: self.answer(handle))
            self.pending.add(handle)
        elif method == "GET" and target.startswith("/stats"):
            body = stats.as_json()
            if "reset=1" in target:
                stats.requests = 0
                stats.peak_in_flight = stats.in_flight
            self.transport.write(response("200 OK", body))
        else:
            self.transport.write(response("404 Not Found", b'{"error": {"message": "not found"}}'))

    def answer(self, handle: asyncio.TimerHandle) -> None:
        self.pending.discard(handle)
        self.stats.in_flight -= 1
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(completion(int(time.time())))

    def connection_lost(self, exc: Exception | None) -> None:
        for handle in self.pending:
            handle.cancel()
            self.stats.in_flight -= 1
        self.pending.clear()


async def main(delay: float, port: int) -> None:
    stats = Stats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Connection(stats, delay), "127.0.0.1", port, backlog=4096
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


# --- Starting it from a benchmark ----------------------------------------------------------------


@dataclass
class SlowServer:
    proc: subprocess.Popen[str]
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self, reset: bool = False) -> dict[str, int]:
        url = f"http://127.0.0.1:{self.port}/stats" + ("?reset=1" if reset else "")
        with urllib.request.urlopen(url, timeout=5) as answer:
            data: dict[str, int] = json.loads(answer.read())
        return data


@contextmanager
def slow_server(delay: float) -> Iterator[SlowServer]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.slow_chat_server", "--delay", str(delay)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the slow chat server did not start: {line!r}")
        yield SlowServer(proc, int(line.split()[1]))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.slow_chat_server")
    parser.add_argument("--delay", type=float, default=2.0, help="seconds before each answer")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(main(args.delay, args.port))
    sys.exit(0)
