"""The connect-time check and the bounded decoder, with no network: a fake resolver and a
fake backend stand for DNS and for the sockets (issue 10, items 1 and 4).

- The guarded backend connects to the address it checked, never to the name; a refused
  address never reaches the real backend, nor does a name with one refused address among
  public ones.
- A refused, an unreachable, a timed-out connection and a name that does not resolve all raise
  the same ``ConnectError("connection failed")``: nothing tells a closed port from a filtered
  one.
- The decoder never produces more than the limit out of any layer, however the codings are
  stacked; one gzip or deflate (zlib or raw) layer still decodes, in chunks of any size.
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import socket
import zlib
from collections.abc import Sequence
from typing import Any

import httpcore
import pytest

from personal_assistant.outbound import STRICT, Policy, RefusedDestination, parse_allow
from personal_assistant.outbound.decoding import (
    MAX_CODINGS,
    BoundedDecoder,
    TooLarge,
    UnsupportedEncoding,
)
from personal_assistant.outbound.http import GuardedBackend


class FakeInner(httpcore.AsyncNetworkBackend):
    """Records each connect; raises ``error`` if given, else returns a dummy stream."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, **_: Any
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if self.error is not None:
            raise self.error
        return httpcore.AsyncMockStream([])


def resolver(answer: Sequence[str] | BaseException) -> Any:
    async def resolve(host: str, port: int) -> Sequence[str]:
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return resolve


def connect(backend: GuardedBackend, host: str = "feeds.example") -> Any:
    return asyncio.run(backend.connect_tcp(host, 443, timeout=1))


def test_it_connects_to_the_address_it_checked_not_to_the_name() -> None:
    inner = FakeInner()
    backend = GuardedBackend(STRICT, resolver=resolver(["93.184.216.34"]), inner=inner)
    connect(backend)
    assert inner.connects == [("93.184.216.34", 443)]


@pytest.mark.parametrize(
    "addresses",
    [
        ["169.254.169.254"],
        ["127.0.0.1"],
        ["::ffff:10.0.0.1"],
        ["93.184.216.34", "192.168.0.1"],  # one bad address among good ones
        [],
    ],
)
def test_a_refused_address_never_reaches_the_socket(addresses: list[str]) -> None:
    inner = FakeInner()
    backend = GuardedBackend(STRICT, resolver=resolver(addresses), inner=inner)
    with pytest.raises(RefusedDestination):
        connect(backend)
    assert inner.connects == []


def test_the_allow_list_lets_an_internal_address_through() -> None:
    inner = FakeInner()
    policy = Policy(parse_allow("10.1.0.0/16"))
    connect(GuardedBackend(policy, resolver=resolver(["10.1.2.3"]), inner=inner))
    assert inner.connects == [("10.1.2.3", 443)]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (["93.184.216.34"], ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")),
        (["93.184.216.34"], OSError(errno.EHOSTUNREACH, "No route to host")),
        (["93.184.216.34"], OSError(errno.ENETUNREACH, "Network is unreachable")),
        (["93.184.216.34"], TimeoutError()),
        (["93.184.216.34"], httpcore.ConnectTimeout("timed out")),
        (["93.184.216.34"], httpcore.ConnectError("[Errno 111] Connection refused")),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), None),
        (TimeoutError(), None),  # the resolver itself timed out
    ],
)
def test_every_connection_failure_reads_the_same(
    answer: Sequence[str] | BaseException, error: BaseException | None
) -> None:
    backend = GuardedBackend(STRICT, resolver=resolver(answer), inner=FakeInner(error))
    with pytest.raises(httpcore.ConnectError) as err:
        connect(backend)
    assert str(err.value) == "connection failed"
    # and nothing chained to it tells the cause either
    assert err.value.__cause__ is None
    assert err.value.__context__ is None or err.value.__suppress_context__


def test_the_next_address_is_tried_when_one_fails() -> None:
    class FirstFails(FakeInner):
        async def connect_tcp(
            self, host: str, port: int, timeout: float | None = None, **_: Any
        ) -> httpcore.AsyncNetworkStream:
            self.connects.append((host, port))
            if len(self.connects) == 1:
                raise OSError(errno.ECONNREFUSED, "Connection refused")
            return httpcore.AsyncMockStream([])

    inner = FirstFails()
    answer = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]
    connect(GuardedBackend(STRICT, resolver=resolver(answer), inner=inner))
    assert [host for host, _ in inner.connects] == answer


def test_unix_sockets_are_refused() -> None:
    backend = GuardedBackend(STRICT, inner=FakeInner())
    with pytest.raises(RefusedDestination):
        asyncio.run(backend.connect_unix_socket("/var/run/docker.sock"))


# --- decoding ---------------------------------------------------------------------------------

LIMIT = 1024 * 1024


def decode_in_chunks(decoder: BoundedDecoder, data: bytes, size: int) -> bytes:
    return b"".join(decoder.feed(data[i : i + size]) for i in range(0, len(data), size))


def bomb(decoded: int, times: int) -> bytes:
    data = gzip.compress(bytes(decoded), 9)
    for _ in range(times - 1):
        data = gzip.compress(data, 9)
    return data


@pytest.mark.parametrize(
    ("header", "times"),
    [("gzip", 1), ("gzip, gzip", 2), ("gzip, gzip, gzip", 3), ("x-gzip,GZIP , gzip", 3)],
)
def test_a_bomb_stops_at_the_limit_in_every_layer(header: str, times: int) -> None:
    """64 MiB of zeros behind 1 to 3 gzip layers, against a 1 MiB limit."""
    data = bomb(64 * LIMIT, times)
    decoder = BoundedDecoder(header, LIMIT)
    produced: list[int] = []
    with pytest.raises(TooLarge):
        for i in range(0, len(data), 512):
            produced.append(len(decoder.feed(data[i : i + 512])))
    assert sum(produced) <= LIMIT and decoder.size <= LIMIT
    assert all(layer._produced <= LIMIT for layer in decoder._layers)


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_one_layer_still_decodes_in_chunks_of_any_size(chunk: int) -> None:
    text = b"BEGIN:VCALENDAR\r\n" + b"SUMMARY:x\r\n" * 5000 + b"END:VCALENDAR\r\n"
    deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw_deflate = deflater.compress(text) + deflater.flush()
    for header, encoded in (
        ("gzip", gzip.compress(text)),
        ("deflate", zlib.compress(text)),
        ("deflate", raw_deflate),
        ("", text),
        ("identity", text),
    ):
        decoded = decode_in_chunks(BoundedDecoder(header, LIMIT), encoded, chunk)
        assert decoded == text, (header, chunk)


def test_exactly_the_limit_is_accepted_one_byte_more_is_not() -> None:
    assert (
        len(decode_in_chunks(BoundedDecoder("gzip", 1000), gzip.compress(bytes(1000)), 3)) == 1000
    )
    with pytest.raises(TooLarge):
        decode_in_chunks(BoundedDecoder("gzip", 1000), gzip.compress(bytes(1001)), 3)
    with pytest.raises(TooLarge):
        BoundedDecoder("", 1000).feed(bytes(1001))


@pytest.mark.parametrize(
    "header", ["br", "zstd", "compress", "gzip, br", ", ".join(["gzip"] * (MAX_CODINGS + 1))]
)
def test_codings_it_cannot_bound_are_refused(header: str) -> None:
    with pytest.raises(UnsupportedEncoding):
        BoundedDecoder(header, LIMIT)


def test_corrupt_compressed_data_is_refused() -> None:
    with pytest.raises(UnsupportedEncoding):
        BoundedDecoder("gzip", LIMIT).feed(b"not gzip at all")
    with pytest.raises(UnsupportedEncoding):
        BoundedDecoder("deflate", LIMIT).feed(b"\xff" * 64)
