"""The agent's host lookups: one at a time per host, kept a while, failures not kept."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from personal_assistant.agents.addresses import Addresses, is_literal

INFO = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.7", 443))


class Resolver:
    """Stands in for the loop's ``getaddrinfo``: counts the lookups, answers when released."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.asked = 0
        self.release = asyncio.Event()

    async def __call__(self, host: str, port: int, **_: Any) -> Any:
        self.asked += 1
        await self.release.wait()
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return [answer]


async def _with(resolver: Resolver) -> None:
    asyncio.get_running_loop().getaddrinfo = resolver  # type: ignore[method-assign]


def test_calls_at_once_share_one_lookup_and_its_answer_is_kept() -> None:
    async def main() -> tuple[int, list[Any]]:
        resolver = Resolver(INFO, INFO)
        await _with(resolver)
        addresses = Addresses()
        calls = [asyncio.create_task(addresses.of("api.example", 443)) for _ in range(20)]
        await asyncio.sleep(0)
        resolver.release.set()
        found = await asyncio.gather(*calls)
        found.append(await addresses.of("api.example", 443))  # kept
        return resolver.asked, found

    asked, found = asyncio.run(main())
    assert asked == 1
    assert found == [[(socket.AF_INET, socket.SOCK_STREAM, 6, ("192.0.2.7", 443))]] * 21


def test_an_answer_is_asked_again_once_its_time_is_up() -> None:
    async def main() -> int:
        resolver = Resolver(INFO, INFO)
        resolver.release.set()
        await _with(resolver)
        addresses = Addresses(keep_s=0.0)
        await addresses.of("api.example", 443)
        await addresses.of("api.example", 443)
        return resolver.asked

    assert asyncio.run(main()) == 2


def test_a_failed_lookup_reaches_every_call_and_is_not_kept() -> None:
    async def main() -> tuple[list[Any], int]:
        resolver = Resolver(socket.gaierror(-2, "Name or service not known"), INFO)
        await _with(resolver)
        addresses = Addresses()
        calls = [asyncio.create_task(addresses.of("api.example", 443)) for _ in range(3)]
        await asyncio.sleep(0)
        resolver.release.set()
        failed = await asyncio.gather(*calls, return_exceptions=True)
        await addresses.of("api.example", 443)  # asked again
        return failed, resolver.asked

    failed, asked = asyncio.run(main())
    assert all(isinstance(f, socket.gaierror) for f in failed) and asked == 2


def test_a_call_that_gives_up_leaves_the_lookup_to_the_others() -> None:
    async def main() -> list[Any]:
        resolver = Resolver(INFO)
        await _with(resolver)
        addresses = Addresses()
        impatient = asyncio.create_task(addresses.of("api.example", 443))
        patient = asyncio.create_task(addresses.of("api.example", 443))
        await asyncio.sleep(0)
        impatient.cancel()
        resolver.release.set()
        return await patient

    assert asyncio.run(main()) == [(socket.AF_INET, socket.SOCK_STREAM, 6, ("192.0.2.7", 443))]


@pytest.mark.parametrize(
    ("host", "literal"),
    [("127.0.0.1", True), ("::1", True), ("localhost", False), ("api.openai.com", False)],
)
def test_an_address_written_out_is_not_looked_up(host: str, literal: bool) -> None:
    assert is_literal(host) is literal
