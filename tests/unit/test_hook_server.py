"""The tests' webhook receiver (``tests/support/hook_server.py``) records only whole requests.

A worker killed while it sends a notification leaves a request cut short: its headers, and
part of its body or none. The chaos scenarios compare what the receiver accepted with what the
database says was delivered, so such a request must leave no trace (it was never answered), and
the receiver must go on taking the next one.
"""

from __future__ import annotations

import json
import socket
import urllib.request

from support.hook_server import HookServer


def _post(server: HookServer, body: dict[str, str], key: str) -> int:
    request = urllib.request.Request(
        server.url().replace("json://", "http://"),
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return int(answer.status)


def _cut_short(server: HookServer, sent: bytes) -> None:
    """A POST announcing 100 bytes of body whose sender goes away after ``sent``."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /notify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Idempotency-Key: cut\r\nContent-Length: 100\r\n\r\n" + sent
        )
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1024)  # the server closes the connection: nothing is answered


def test_a_request_cut_short_is_not_recorded_and_the_next_one_is() -> None:
    with HookServer() as server:
        _cut_short(server, b"")
        _cut_short(server, b'{"title": "half')
        assert _post(server, {"title": "whole"}, "k1") == 200
    assert server.requests == [("/notify", 200)]
    assert server.keys == ["k1"]
    assert server.received == [{"title": "whole"}]
