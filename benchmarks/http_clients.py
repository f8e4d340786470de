"""Why the OpenAI-compatible agent has an HTTP/1.1 client of its own: the CPU an HTTP client
spends per request with thousands of requests in flight on one event loop.

``python -m benchmarks.http_clients [--in-flight 2000] [--seconds 10]`` starts the slow chat
server (answers after 2 s, a child process) and, for httpx (the agent's first set-up: clients
of 8 connections, enough of them for every request in flight), aiohttp (one session: its
second) and the agent's own ``personal_assistant.agents.chat_http.ChatTransport`` (httptools
parsing), keeps ``--in-flight`` chat-completions requests open for ``--seconds``, each
coroutine posting again as soon as its answer is read. It prints requests/s against the
ceiling (in flight / 2 s) and this process's CPU per request. Every client starts with no
connection open, so the first requests also connect. Not part of ``make bench``: a development
measurement, cited where the choice was made.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import resource
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx

from benchmarks.slow_chat_server import slow_server
from personal_assistant.agents.chat_http import ChatTransport

DELAY = 2.0
PAYLOAD = {"model": "m", "messages": [{"role": "user", "content": "hello " * 50}]}

Post = Callable[[], Awaitable[None]]


def _httpx(url: str, in_flight: int) -> tuple[Post, Callable[[], Awaitable[None]]]:
    clients = [
        httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=8))
        for _ in range(math.ceil(in_flight / 8))
    ]
    turn = itertools.cycle(clients)

    async def post() -> None:
        json.loads((await next(turn).post(url, json=PAYLOAD)).content)

    async def close() -> None:
        for client in clients:
            await client.aclose()

    return post, close


def _chat_transport(url: str, in_flight: int) -> tuple[Post, Callable[[], Awaitable[None]]]:
    transport = ChatTransport(url, max_connections=in_flight)

    async def post() -> None:
        json.loads((await transport.post(PAYLOAD, {}, 60.0)).content)

    return post, transport.aclose


def _aiohttp(url: str, in_flight: int) -> tuple[Post, Callable[[], Awaitable[None]]]:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight))

    async def post() -> None:
        async with session.post(url, json=PAYLOAD) as answer:
            json.loads(await answer.read())

    return post, session.close


CLIENTS = {"httpx": _httpx, "aiohttp": _aiohttp, "agent": _chat_transport}


async def _measure(name: str, url: str, in_flight: int, seconds: float) -> None:
    post, close = CLIENTS[name](url, in_flight)
    done = 0
    until = time.monotonic() + seconds

    async def keep_posting() -> None:
        nonlocal done
        while time.monotonic() < until:
            await post()
            done += 1

    before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.monotonic()
    try:
        await asyncio.gather(*(keep_posting() for _ in range(in_flight)))
    finally:
        await close()
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(
        f"{name:8} {in_flight:,} in flight: {done / wall:,.0f} requests/s "
        f"(ceiling {in_flight / DELAY:,.0f}/s), {1000 * cpu / done:.2f} ms CPU per request"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http_clients")
    parser.add_argument("--in-flight", type=int, default=2_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with slow_server(DELAY) as server:
        url = server.base_url + "/chat/completions"
        for name in CLIENTS:
            asyncio.run(_measure(name, url, args.in_flight, args.seconds))


if __name__ == "__main__":
    main()
