"""The agent's HTTP/1.1 client on the wire: real sockets on loopback, servers that answer in
every way the protocol allows (and some it does not). No database needed.

Each server here is an asyncio server on the test's own loop whose handler writes raw bytes, so
what the client must read is exactly what the test says.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from personal_assistant.agents import chat_http
from personal_assistant.agents.addresses import is_literal
from personal_assistant.agents.base import AgentRequest
from personal_assistant.agents.openai_compat import OpenAICompatibleAgent
from personal_assistant.errors import AgentError

pytestmark = pytest.mark.integration

KEY = "sk-wire-DO-NOT-LEAK-77d1"
REQUEST = AgentRequest(
    task_id=1,
    run_id=2,
    title="Wire",
    instruction="Say hello.",
    task_type="reminder",
    ai_context={},
    owner_name="Ada",
    timezone="UTC",
    scheduled_for=dt.datetime(2026, 12, 5, 8, tzinfo=dt.UTC),
    local_time=dt.datetime(2026, 12, 5, 8, tzinfo=dt.UTC),
    attempt=1,
    previous_results=(),
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def body(text: str) -> bytes:
    return json.dumps({"choices": [{"message": {"content": text}}], "model": "wire"}).encode()


def answer(payload: bytes, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"".join(extra)
    return head + b"Content-Length: %d\r\n\r\n" % len(payload) + payload


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head and body (the client always sends a Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head, await reader.readexactly(length)


class Server:
    """Serves ``handler`` on loopback; counts connections and keeps every request head."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open_now = self.peak_open = 0
        self.heads: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            self.open_now += 1
            self.peak_open = max(self.peak_open, self.open_now)
            try:
                await self.handler(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                self.open_now -= 1
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def run(handler: Handler, calls: int = 1, **options: Any) -> tuple[list[str], Server]:
    """``calls`` completions, one after another, by one agent on a server of ``handler``."""

    options.setdefault("api_key", KEY)

    async def go() -> tuple[list[str], Server]:
        async with Server(handler) as server:
            agent = OpenAICompatibleAgent(server.base_url, "m", **options)
            try:
                return [(await agent.complete(REQUEST)).text for _ in range(calls)], server
            finally:
                await agent.aclose()

    return asyncio.run(go())


def fails(handler: Handler, **options: Any) -> AgentError:
    with pytest.raises(AgentError) as err:
        run(handler, max_attempts=1, **options)
    assert KEY not in str(err.value) and KEY not in repr(err.value)
    return err.value


# Keep-alive ---------------------------------------------------------------------------------


def test_one_connection_carries_the_calls_one_after_another() -> None:
    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for n in range(3):
            await read_request(reader)
            writer.write(answer(body(f"answer {n}")))

    texts, server = run(keep_alive, calls=3)
    assert texts == ["answer 0", "answer 1", "answer 2"]
    assert server.connections == 1


def test_a_connection_the_server_dropped_while_idle_is_replaced_once() -> None:
    """The server closes each connection after its answer without saying so: the next call
    finds the reused connection closed before any byte came back, and is sent on a new one."""

    async def one_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(body("fresh")))
        await writer.drain()

    texts, server = run(one_each, calls=2)
    assert texts == ["fresh", "fresh"]
    assert server.connections == 2


def test_connection_close_is_honoured() -> None:
    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(body("bye"), b"Connection: close\r\n"))
        await writer.drain()
        await reader.read()  # a client that reused the connection would hang here

    texts, server = run(closing, calls=2)
    assert texts == ["bye", "bye"]
    assert server.connections == 2


def test_no_more_connections_than_allowed_are_open() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            await asyncio.sleep(0.05)
            writer.write(answer(body("slow")))

    async def go() -> Server:
        async with Server(slow) as server:
            agent = OpenAICompatibleAgent(server.base_url, "m", max_connections=2)
            try:
                texts = await asyncio.gather(*(agent.complete(REQUEST) for _ in range(6)))
            finally:
                await agent.aclose()
            assert [t.text for t in texts] == ["slow"] * 6
            return server

    server = asyncio.run(go())
    assert server.peak_open == 2 and server.connections == 2


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop])
def test_a_host_name_is_resolved_once_for_the_connections_opened_together(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    """A burst opens a connection per call: each asked the resolver again (aiohttp kept its
    answers 10 s), 50 lookups for 50 calls, in the loop's default executor of a few threads."""

    async def together(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            await asyncio.sleep(0.2)  # every call of the burst holds a connection of its own
            writer.write(answer(body("hi")))

    async def go() -> tuple[Server, list[str]]:
        loop = asyncio.get_running_loop()
        looked_up: list[str] = []
        resolve = loop.getaddrinfo

        async def counted(host: Any, *args: Any, **kwargs: Any) -> Any:
            looked_up.append(host)
            return await resolve(host, *args, **kwargs)

        loop.getaddrinfo = counted  # type: ignore[method-assign]
        async with Server(together) as server:
            url = f"http://localhost:{server.port}/v1"
            agent = OpenAICompatibleAgent(url, "m", max_connections=50)
            try:
                texts = await asyncio.gather(*(agent.complete(REQUEST) for _ in range(50)))
                assert [t.text for t in texts] == ["hi"] * 50
                await agent.aclose()  # its connections closed, the next call opens one
                again = await agent.complete(REQUEST)  # ... to the address found before
                assert again.text == "hi"
            finally:
                await agent.aclose()
            return server, looked_up

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        server, looked_up = runner.run(go())
    names = [host for host in looked_up if not is_literal(host)]  # uvloop checks 127.0.0.1 too
    assert server.connections == 51 and names == ["localhost"]


# Bodies -------------------------------------------------------------------------------------


def test_a_chunked_answer_is_read_whole() -> None:
    payload = body("in three chunks")
    chunks = [payload[:10], payload[10:25], payload[25:]]
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"

    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (encoded[:7], encoded[7:30], encoded[30:]):  # split anywhere
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)

    assert run(chunked)[0] == ["in three chunks"]


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
def test_a_deflated_answer_is_inflated(wbits: int) -> None:
    squeeze = zlib.compressobj(wbits=wbits)
    payload = squeeze.compress(body("deflated")) + squeeze.flush()

    async def deflated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(payload, b"Content-Encoding: deflate\r\n"))

    assert run(deflated)[0] == ["deflated"]


def test_an_interim_answer_is_skipped() -> None:
    async def hints(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        writer.write(answer(body("after the hints")))

    assert run(hints)[0] == ["after the hints"]


# Failures -----------------------------------------------------------------------------------


def test_a_connection_closed_mid_answer_is_not_sent_again() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(body("never whole"))[:-5])
        await writer.drain()

    async def go() -> Server:
        async with Server(cut) as server:
            agent = OpenAICompatibleAgent(server.base_url, "m", max_attempts=1)
            try:
                with pytest.raises(AgentError) as err:
                    await agent.complete(REQUEST)
            finally:
                await agent.aclose()
            assert err.value.message.endswith(": ServerDisconnected") and not err.value.permanent
            return server

    assert asyncio.run(go()).connections == 1


def test_an_answer_that_is_not_http_is_a_transient_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        await reader.read()

    exc = fails(garbage)
    assert exc.message.endswith(": InvalidAnswer") and not exc.permanent


def test_an_unknown_content_encoding_is_refused() -> None:
    async def brotli(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"\x8b\x00\x80", b"Content-Encoding: br\r\n"))
        await reader.read()

    assert fails(brotli).message.endswith(": InvalidAnswer")


def test_a_timed_out_call_leaves_no_connection_to_reuse() -> None:
    """The late answer of a call that timed out must not be read as the next call's answer."""
    connections = 0

    async def first_late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        late = connections == 1
        while True:
            await read_request(reader)
            if late:
                await asyncio.sleep(0.5)
            writer.write(answer(body("too late" if late else "on time")))
            await writer.drain()

    async def go() -> str:
        async with Server(first_late) as server:
            agent = OpenAICompatibleAgent(server.base_url, "m", timeout=0.2, max_attempts=1)
            try:
                with pytest.raises(AgentError, match="did not answer within"):
                    await agent.complete(REQUEST)
                await asyncio.sleep(0.5)  # the late answer is sent now, to a closed connection
                return (await agent.complete(REQUEST)).text
            finally:
                await agent.aclose()

    assert asyncio.run(go()) == "on time"
    assert connections == 2


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise AssertionError("nothing should have been sent")

    exc = fails(never, api_key="sk-x\r\nX-Injected: 1")
    assert exc.permanent
    assert exc.message == "the agent's request header 'Authorization' holds a line break"


# TLS and proxies ----------------------------------------------------------------------------


def _certificate(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wire test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """The server's TLS context; the client's shared context trusts its certificate alone."""
    cert, key = _certificate(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    monkeypatch.setattr("personal_assistant.outbound.http.tls_context", lambda: client)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return server


async def _tls_server(context: ssl.SSLContext) -> tuple[asyncio.Server, int]:
    async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head, _ = await read_request(reader)
            assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
            writer.write(answer(body("over TLS")))
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(hello, "127.0.0.1", 0, ssl=context)
    return server, int(server.sockets[0].getsockname()[1])


async def _over_tls(context: ssl.SSLContext, **options: Any) -> str:
    """One completion by a new agent from a TLS server of ``context``."""
    server, port = await _tls_server(context)
    agent = OpenAICompatibleAgent(f"https://127.0.0.1:{port}/v1", "m", api_key=KEY, **options)
    try:
        return (await agent.complete(REQUEST)).text
    finally:
        await agent.aclose()
        server.close()


def test_https_verifies_the_server_with_the_shared_context(tls: ssl.SSLContext) -> None:
    assert asyncio.run(_over_tls(tls)) == "over TLS"


def test_https_to_a_server_it_cannot_verify_is_refused(
    tls: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    untrusting = ssl.create_default_context()  # the system's CAs: not the test's certificate
    monkeypatch.setattr("personal_assistant.outbound.http.tls_context", lambda: untrusting)

    with pytest.raises(AgentError) as err:
        asyncio.run(_over_tls(tls, max_attempts=1))
    assert err.value.message.endswith(": SSLCertVerificationError")
    assert KEY not in str(err.value)


def test_https_goes_through_the_proxys_tunnel_with_its_credentials(
    tls: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    connects: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        connects.append(head)
        target = head.split(b" ")[1].decode()
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            up_writer.close()

    async def go() -> str:
        async with Server(proxy) as tunnel:
            monkeypatch.setenv("HTTPS_PROXY", f"http://squid:s3cret@127.0.0.1:{tunnel.port}")
            return await _over_tls(tls)

    assert asyncio.run(go()) == "over TLS"
    assert connects[0].startswith(b"CONNECT 127.0.0.1:")
    assert b"Proxy-Authorization: Basic c3F1aWQ6czNjcmV0\r\n" in connects[0]
    assert KEY.encode() not in connects[0]  # the API key travels inside the tunnel only


def test_a_proxy_that_refuses_the_tunnel_is_a_transient_error(tls: ssl.SSLContext) -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async def go() -> None:
        async with Server(refuse) as tunnel:
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{tunnel.port}")
                agent = OpenAICompatibleAgent("https://api.invalid/v1", "m", max_attempts=1)
                try:
                    await agent.complete(REQUEST)
                finally:
                    await agent.aclose()

    with pytest.raises(AgentError) as err:
        asyncio.run(go())
    assert err.value.message.endswith(": InvalidAnswer") and not err.value.permanent


def test_a_url_that_is_not_http_is_refused_when_the_agent_is_made() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        chat_http.ChatTransport("ftp://example.org/v1", max_connections=1)


def test_a_call_that_ends_after_the_agent_closed_leaves_no_connection_open() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(0.2)
        writer.write(answer(body("after close")))
        await writer.drain()
        await reader.read()  # until the client closes its end

    async def go() -> tuple[str, int]:
        async with Server(slow) as server:
            agent = OpenAICompatibleAgent(server.base_url, "m")
            call = asyncio.ensure_future(agent.complete(REQUEST))
            await asyncio.sleep(0.05)
            await agent.aclose()
            text = (await call).text
            for _ in range(100):  # the server sees the client close its end
                if not server.open_now:
                    break
                await asyncio.sleep(0.01)
            return text, server.open_now

    assert asyncio.run(go()) == ("after close", 0)


def test_a_path_is_sent_as_written_but_for_what_a_request_line_cannot_hold() -> None:
    heads: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        heads.append(head)
        writer.write(answer(body("ok")))
        await writer.drain()

    async def go() -> None:
        async with Server(record) as server:
            url = f"http://127.0.0.1:{server.port}/my models/v1%2Fbeta"
            agent = OpenAICompatibleAgent(url, "m")
            try:
                await agent.complete(REQUEST)
            finally:
                await agent.aclose()

    asyncio.run(go())
    request_line = heads[0].split(b"\r\n", 1)[0]
    assert request_line == b"POST /my%20models/v1%2Fbeta/chat/completions HTTP/1.1"


def test_the_client_runs_on_uvloop_too() -> None:
    """uvicorn serves ``pa serve`` on uvloop when it is installed, and the API reads requests
    said in English with this client: uvloop's transports are not asyncio's classes."""

    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(body("on uvloop")))
        await writer.drain()

    async def go() -> str:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        async with Server(once) as server:
            agent = OpenAICompatibleAgent(server.base_url, "m", max_attempts=1)
            try:
                return (await agent.complete(REQUEST)).text
            finally:
                await agent.aclose()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(go()) == "on uvloop"
