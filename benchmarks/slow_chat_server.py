"""A chat-completions server that answers every request after a fixed delay: a slow model.

Run as a child process (``python -m benchmarks.slow_chat_server --delay 2``); it prints
``PORT <n>`` once listening on loopback. One asyncio task per connection, HTTP/1.1 keep-alive,
so thousands of requests can wait at once. ``POST .../chat/completions`` answers 200 with a
valid completion and usage after ``--delay`` seconds; ``GET /stats`` answers at once with
``{"requests": ..., "in_flight": ..., "peak_in_flight": ...}`` and ``GET /stats?reset=1``
also resets the count and the peak. The server stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time

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


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stats: Stats, delay: float
) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target = lines[0].split(" ")[:2]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            if method == "GET" and target.startswith("/stats"):
                body = stats.as_json()
                if "reset=1" in target:
                    stats.requests = 0
                    stats.peak_in_flight = stats.in_flight
                writer.write(response("200 OK", body))
            elif method == "POST" and target.endswith("/chat/completions"):
                stats.requests += 1
                stats.in_flight += 1
                stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
                try:
                    await asyncio.sleep(delay)
                finally:
                    stats.in_flight -= 1
                body = json.dumps({**COMPLETION, "created": int(time.time())}).encode()
                writer.write(response("200 OK", body))
            else:
                writer.write(response("404 Not Found", b'{"error": {"message": "not found"}}'))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def main(delay: float, port: int) -> None:
    stats = Stats()
    server = await asyncio.start_server(
        lambda r, w: serve_connection(r, w, stats, delay), "127.0.0.1", port, backlog=4096
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.slow_chat_server")
    parser.add_argument("--delay", type=float, default=2.0, help="seconds before each answer")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(main(args.delay, args.port))
    sys.exit(0)
