"""The outbound policy of in-process tests: the test servers listen on loopback, which the
default policy refuses (``OUTBOUND_ALLOW=127.0.0.0/8`` does the same for subprocesses)."""

from __future__ import annotations

from personal_assistant.outbound import Policy, parse_allow

LOOPBACK = Policy(parse_allow("127.0.0.0/8"))
