"""Issue 10, items 1, 4 and 6: what a user's URL can make the server connect to.

Hostile servers on loopback only. The tests allow ``127.0.0.1/32`` (``OUTBOUND_ALLOW``) where
a legitimate server must be reachable, and put the internal target, a fake cloud metadata
service answering an ``AccessKeyId``, on ``127.0.0.2``: another loopback address, which the
policy refuses like any internal one. The policy is by IP address, not by port, so the internal
target cannot share ``127.0.0.1`` with an allowed server; a second loopback address is what a
real deployment looks like (an allowed public address, an internal one).

- A feed at the metadata service, directly or through a redirect from an allowed server, is
  refused before any connection to it, and nothing of its answer reaches ``pa calendar``.
- A name resolving to an internal address is refused (``localhost``), and a name that
  resolves to an allowed address first and to the internal one next (DNS rebinding) is
  refused at the second connection: the check is made on the address connected to.
- A closed port and a filtered one (a listener whose backlog is full: the connect times out)
  give the same error, for feeds and for ``pa channel test``.
- A gzip bomb (gzip applied three times) is refused with the decoded size bounded while
  streaming: peak memory stays a small multiple of the 5 MB limit, not the bomb's size.
- Webhook and e-mail channels to an internal address are refused when added, tested and sent,
  without connecting, even when the name resolved to an allowed address when checked.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import smtplib
import socket
import threading
import tracemalloc
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet

from personal_assistant.calendars import fetch as calendar_fetch
from personal_assistant.channel_keys import ChannelCipher
from personal_assistant.errors import DeliveryError, ValidationError
from personal_assistant.notifications.transports.apprise import (
    AppriseTransport,
    check_destination,
)
from personal_assistant.notifications.transports.base import Message, Recipient
from personal_assistant.outbound import Policy, RefusedDestination, parse_allow
from personal_assistant.outbound import sockets as guard
from personal_assistant.outbound.http import guarded_client
from support.cli import Pa, ready
from support.hook_server import HookServer
from support.ics_server import IcsServer, vcalendar, vevent

pytestmark = pytest.mark.integration

SECRET = "ASIAQSECRETKEY7EXAMPLE"
INTERNAL = "127.0.0.2"
LOCAL_ONLY = Policy(parse_allow("127.0.0.1/32"))
MAIL_QUERY = "mode=insecure&from=a@example.org&to=b@example.org"
FEED = vcalendar(vevent("a@x", "Dentist", "DTSTART:20990101T100000Z"))


class MetadataService:
    """A fake cloud metadata service on ``127.0.0.2``: any request gets its credentials, in
    the status line's reason phrase and in the body. Counts the connections it accepted."""

    def __init__(self) -> None:
        self._listener = socket.create_server((INTERNAL, 0))
        self.port = int(self._listener.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, path: str = "/latest/meta-data/iam/security-credentials/role") -> str:
        return f"http://{INTERNAL}:{self.port}{path}"

    def _serve(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    body = json.dumps({"AccessKeyId": SECRET, "SecretAccessKey": SECRET}).encode()
                    conn.sendall(
                        f"HTTP/1.1 401 AccessKeyId {SECRET}\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                        + body
                    )
                except OSError:
                    pass

    def __enter__(self) -> MetadataService:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()


class Answers:
    """An HTTP server on 127.0.0.1 answering every GET with a fixed status, headers and body."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        answer = (status, headers, body)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code, extra, payload = answer
                self.send_response(code)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "/feed.ics") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Answers:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on: a connection is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def filtered_port() -> Iterator[int]:
    """A port on 127.0.0.1 where a connection gets no answer, as behind a dropping firewall:
    a listener with a backlog of 0, filled by one connection never accepted, so Linux drops
    the next SYNs and the connect times out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            with pytest.raises(TimeoutError):  # the port is filtered now
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            yield port


@pytest.fixture
def pa(tmp_path: Path) -> Pa:
    cli = ready(tmp_path)
    cli.env["OUTBOUND_ALLOW"] = "127.0.0.1/32"
    return cli


@pytest.fixture
def metadata() -> Iterator[MetadataService]:
    with MetadataService() as service:
        yield service


def fetch(url: str, **options: Any) -> calendar_fetch.Fetched:
    return asyncio.run(calendar_fetch.fetch_feed(url, policy=LOCAL_ONLY, **options))


def fetch_error(url: str, **options: Any) -> str:
    with pytest.raises(ValidationError) as err:
        fetch(url, **options)
    return str(err.value)


# --- calendar feeds ---------------------------------------------------------------------------


def assert_nothing_leaks(pa: Pa, metadata: MetadataService) -> None:
    done = pa("calendar", "sync", "meta")
    assert done.returncode == 6
    assert (
        done.stdout
        == "sync of meta failed: url: could not fetch: refused destination (not a public address)\n"
    )
    shown = pa.ok("calendar", "list") + json.dumps(pa.json("calendar", "list"))
    assert "refused destination" in shown
    assert SECRET not in shown and "AccessKeyId" not in shown
    assert metadata.connections == 0


def test_a_feed_at_the_metadata_service_is_refused_and_nothing_of_it_is_shown(
    pa: Pa, metadata: MetadataService
) -> None:
    pa.ok("calendar", "add", "meta", metadata.url())
    assert_nothing_leaks(pa, metadata)


def test_a_redirect_to_the_metadata_service_is_refused(pa: Pa, metadata: MetadataService) -> None:
    with Answers(302, {"Location": metadata.url()}) as redirector:
        pa.ok("calendar", "add", "meta", redirector.url())
        assert_nothing_leaks(pa, metadata)


def test_a_name_that_resolves_to_loopback_is_refused_by_default() -> None:
    with IcsServer(FEED) as server:
        url = f"http://localhost:{server.port}/calendar.ics"
        with pytest.raises(RefusedDestination) as err:
            asyncio.run(calendar_fetch.fetch_feed(url))  # the default policy: nothing internal
        assert err.value.reason.startswith("loopback")
        assert str(err.value) == "url: could not fetch: refused destination (not a public address)"
        assert server.requests == []


def test_dns_rebinding_is_caught_at_connect_time(metadata: MetadataService) -> None:
    """``feeds.example`` resolves to the allowed 127.0.0.1, then to the internal 127.0.0.2;
    a check of the name before the request would have passed, the connection is refused."""
    answers = iter([["127.0.0.1"], [INTERNAL]])
    asked: list[tuple[str, int]] = []

    async def rebinding(host: str, port: int) -> Sequence[str]:
        asked.append((host, port))
        return next(answers)

    async def two_fetches(port: int) -> tuple[int, BaseException | None]:
        first = guarded_client(LOCAL_ONLY, timeout=5, max_redirects=0, resolver=rebinding)
        async with first:
            status = (await first.get(f"http://feeds.example:{port}/calendar.ics")).status_code
        again = guarded_client(LOCAL_ONLY, timeout=5, max_redirects=0, resolver=rebinding)
        async with again:
            try:
                await again.get(f"http://feeds.example:{metadata.port}/calendar.ics")
            except RefusedDestination as refused:
                return status, refused
        return status, None

    with IcsServer(FEED) as server:
        status, refused = asyncio.run(two_fetches(server.port))
        assert status == 200 and len(server.requests) == 1
    assert isinstance(refused, RefusedDestination) and refused.reason.startswith("loopback")
    assert asked == [("feeds.example", server.port), ("feeds.example", metadata.port)]
    assert metadata.connections == 0


def test_a_closed_port_and_a_filtered_port_read_the_same() -> None:
    closed = fetch_error(f"http://127.0.0.1:{closed_port()}/c.ics", timeout=0.5)
    with filtered_port() as port:
        filtered = fetch_error(f"http://127.0.0.1:{port}/c.ics", timeout=0.5)
    assert closed == filtered == "url: could not fetch: connection failed"


def test_errors_never_show_what_the_server_said() -> None:
    with Answers(500, {"X-Leak": SECRET}, f"AccessKeyId {SECRET}".encode()) as server:
        assert fetch_error(server.url()) == "url: could not fetch: HTTP 500 Internal Server Error"
    # The metadata service allowed, to see what its answer would show: its status, in our words.
    with MetadataService() as internal, pytest.raises(ValidationError) as err:
        asyncio.run(
            calendar_fetch.fetch_feed(internal.url(), policy=Policy(parse_allow(f"{INTERNAL}/32")))
        )
    assert str(err.value) == "url: could not fetch: HTTP 401 Unauthorized"
    with Answers(200, {"Content-Encoding": "br"}, SECRET.encode()) as server:
        assert fetch_error(server.url()) == "url: could not fetch: invalid response"


@functools.cache
def gzip_bomb(decoded: int = 1 << 30) -> bytes:
    """``decoded`` zero bytes, gzipped three times: 1 GiB in a few hundred bytes."""
    inner = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    once = b"".join(inner.compress(zeros) for _ in range(decoded // len(zeros))) + inner.flush()
    return gzip.compress(gzip.compress(once, 9), 9)


def test_a_gzip_bomb_is_refused_with_the_decoded_size_bounded() -> None:
    """The issue's 268 bytes decoded to 2.19 GB before the 5 MB limit was checked."""
    bomb = gzip_bomb()
    assert len(bomb) < 1024
    headers = {"Content-Type": "text/calendar", "Content-Encoding": "gzip, gzip, gzip"}
    with Answers(200, headers, bomb) as server:
        tracemalloc.start()
        try:
            error = fetch_error(server.url())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert error == f"url: could not fetch: too large (more than {5 * 1024 * 1024:,} bytes)"
    assert peak < 32 * 1024 * 1024, f"peak {peak:,} bytes"


def test_a_single_gzip_or_deflate_feed_is_still_read_and_bounded() -> None:
    for encoding, encoded in (
        ("gzip", gzip.compress(FEED)),
        ("deflate", zlib.compress(FEED)),
        ("x-gzip, identity", gzip.compress(FEED)),
    ):
        with Answers(200, {"Content-Encoding": encoding}, encoded) as server:
            assert fetch(server.url()).body == FEED, encoding
    big = gzip.compress(b"BEGIN:VCALENDAR\r\n" + b"X" * (6 * 1024 * 1024))
    with Answers(200, {"Content-Encoding": "gzip"}, big) as server:
        assert fetch_error(server.url()).startswith("url: could not fetch: too large")
        small = fetch_error(server.url(), max_bytes=1000)
        assert small == "url: could not fetch: too large (more than 1,000 bytes)"


# --- channels ---------------------------------------------------------------------------------


INTERNAL_CHANNELS = [
    "json://{host}:{port}/hook",
    "xml://{host}:{port}/hook",
    "form://{host}:{port}/hook",
    "jsons://user:pw@{host}:{port}/hook",
    "mailto://u:p@{host}:{port}?" + MAIL_QUERY,
    "mailto://u:p@example.org?smtp={host}&from=a@example.org&to=b@example.org",  # the relay
    "ntfy://{host}:{port}/topic",
    "mmost://{host}:{port}/3ccdd113474722377935511fc85d3dd4",
    "json://169.254.169.254/latest/meta-data",
    "json://[::1]:8080/hook",
    "json://[fd00:ec2::254]/hook",
]


@pytest.mark.parametrize("url", INTERNAL_CHANNELS)
def test_every_channel_kind_to_an_internal_address_is_refused(url: str) -> None:
    with pytest.raises(RefusedDestination) as err:
        check_destination(url.format(host=INTERNAL, port=8080), LOCAL_ONLY)
    assert err.value.field == "url"


def test_channels_with_public_or_fixed_destinations_are_not_refused() -> None:
    for url in (
        "json://93.184.216.34/hook",
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",  # a fixed host: hooks.slack.com
        "ntfy://mytopic",  # ntfy.sh
    ):
        check_destination(url, LOCAL_ONLY)


def test_pa_channel_add_refuses_an_internal_destination(pa: Pa, metadata: MetadataService) -> None:
    for url in (
        f"json://{INTERNAL}:{metadata.port}/hook",
        f"mailto://u:p@example.org?smtp={INTERNAL}&from=a@example.org&to=b@example.org",
    ):
        refused = pa("channel", "add", "inside", url)
        assert refused.returncode == 2, (url, refused.stdout, refused.stderr)
        assert refused.stderr == (
            "error: url: refused destination: not a public address "
            "(internal addresses are refused)\n"
        ), url
    pa.env["OUTBOUND_ALLOW"] = ""  # the default: a name resolving to loopback is refused too
    assert pa("channel", "add", "inside", "json://localhost:8080/hook").returncode == 2
    assert pa.json("channel", "list") == []
    assert metadata.connections == 0


def test_pa_channel_test_refuses_an_internal_channel_without_connecting(
    pa: Pa, metadata: MetadataService
) -> None:
    """Channels added while the destination was allowed (or before the policy existed)."""
    pa.env["OUTBOUND_ALLOW"] = "127.0.0.0/8"
    pa.ok("channel", "add", "hook", f"json://{INTERNAL}:{metadata.port}/hook")
    pa.ok("channel", "add", "mail", f"mailto://u:p@{INTERNAL}:{metadata.port}?{MAIL_QUERY}")
    pa.env["OUTBOUND_ALLOW"] = "127.0.0.1/32"
    for name in ("hook", "mail"):
        done = pa("channel", "test", name, "--json")
        assert done.returncode == 6
        result = json.loads(done.stdout)
        assert (result["delivered"], result["permanent"]) == (False, True)
        assert result["reason"].startswith("url: refused destination"), result
    assert metadata.connections == 0


def test_pa_channel_test_reads_the_same_for_closed_and_filtered_ports(pa: Pa) -> None:
    pa.ok("channel", "add", "closed", f"json://127.0.0.1:{closed_port()}/hook?cto=0.5")
    with filtered_port() as port:
        pa.ok("channel", "add", "filtered", f"json://127.0.0.1:{port}/hook?cto=0.5")
        filtered = json.loads(pa("channel", "test", "filtered", "--json").stdout)
    closed = json.loads(pa("channel", "test", "closed", "--json").stdout)
    assert closed["reason"] == filtered["reason"] == "could not connect: connection failed"
    assert closed["permanent"] is filtered["permanent"] is False


def send(url: str, policy: Policy) -> None:
    cipher = ChannelCipher([Fernet.generate_key()])
    recipient = Recipient(1, "Ada", None, None, "hook", cipher.seal(url))
    transport = AppriseTransport(cipher, timeout=5, outbound=policy)
    asyncio.run(transport.send(recipient, Message("title", "body", key="k1")))


def test_a_send_to_an_internal_address_is_refused_even_after_a_rebinding(
    metadata: MetadataService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name is checked before the send (127.0.0.1, allowed) and again when Apprise
    connects (127.0.0.2 now): the connection is refused, the failure is permanent."""
    answers = iter([["127.0.0.1"], [INTERNAL]])
    monkeypatch.setattr(guard, "addresses", lambda host, port: next(answers))
    with HookServer() as hook:
        with pytest.raises(DeliveryError) as err:
            send(f"json://hook.example:{hook.port}/notify", LOCAL_ONLY)
        assert hook.requests == []
    assert err.value.permanent
    assert err.value.message.startswith("url: refused destination")
    assert metadata.connections == 0


@pytest.mark.parametrize("url", INTERNAL_CHANNELS[:5])
def test_every_send_to_an_internal_address_is_refused(url: str, metadata: MetadataService) -> None:
    with pytest.raises(DeliveryError) as err:
        send(url.format(host=INTERNAL, port=metadata.port), LOCAL_ONLY)
    assert err.value.permanent and err.value.message.startswith("url: refused destination")
    assert metadata.connections == 0


def test_the_connect_time_guard_covers_requests_and_smtplib(metadata: MetadataService) -> None:
    """What Apprise's plugins call, guarded directly: no connection, a refusal recorded."""
    with guard.guarded(LOCAL_ONLY) as seen, pytest.raises(requests.ConnectionError):
        requests.post(metadata.url(), timeout=2)
    assert seen.refused is not None and seen.refused.reason.startswith("loopback")
    with guard.guarded(LOCAL_ONLY) as seen, pytest.raises(OSError):
        smtplib.SMTP(INTERNAL, metadata.port, timeout=2)
    assert seen.refused is not None
    assert metadata.connections == 0
    # Outside a guarded send, the libraries are untouched.
    assert requests.get(metadata.url(), timeout=2).status_code == 401
    assert metadata.connections == 1
