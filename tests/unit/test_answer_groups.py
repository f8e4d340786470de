"""How a part's answers are handed out for writing: together when they come together, as they
come when they are spread out (:class:`~personal_assistant.runs.answer_groups.AnswerGroups`)."""

from __future__ import annotations

import asyncio
from typing import Any

from personal_assistant.runs.answer_groups import AnswerGroups

#: Long enough that answers given in one step of the test always fall in one group.
JOIN_S = 30.0


def _futures(count: int) -> list[asyncio.Future[Any]]:
    loop = asyncio.get_running_loop()
    return [loop.create_future() for _ in range(count)]


def test_answers_that_come_together_are_one_group_in_the_futures_order() -> None:
    async def main() -> list[list[int]]:
        futures = _futures(5)
        for index in (3, 0, 4, 1, 2):
            futures[index].set_result(index)
        return [group async for group in AnswerGroups(futures, wait_s=JOIN_S)]

    assert asyncio.run(main()) == [[0, 1, 2, 3, 4]]


def test_the_last_answer_ends_the_wait_for_a_group() -> None:
    """A group waits up to ``wait_s`` for the answers behind its first one, not once all came."""

    async def main() -> list[list[int]]:
        futures = _futures(3)
        groups = AnswerGroups(futures, wait_s=JOIN_S)
        futures[1].set_result(None)
        first = asyncio.ensure_future(anext(groups))
        await asyncio.sleep(0)
        futures[2].set_result(None)
        await asyncio.sleep(0)
        futures[0].set_result(None)
        return [await asyncio.wait_for(first, JOIN_S / 2), *[g async for g in groups]]

    assert asyncio.run(main()) == [[0, 1, 2]]


def test_an_answer_after_the_wait_comes_in_a_group_of_its_own() -> None:
    async def main() -> list[list[int]]:
        futures = _futures(4)
        groups = AnswerGroups(futures, wait_s=0.0)
        futures[2].set_result(None)
        futures[0].set_result(None)
        got = [await anext(groups)]  # the others run on: the group does not wait for them
        futures[3].set_result(None)
        got.append(await anext(groups))
        futures[1].set_exception(RuntimeError("an answer that failed is handed out too"))
        got.extend([group async for group in groups])
        assert isinstance(futures[1].exception(), RuntimeError)
        return got

    assert asyncio.run(main()) == [[0, 2], [3], [1]]


def test_every_answer_is_handed_out_once_whatever_the_order() -> None:
    async def main() -> list[list[int]]:
        futures = _futures(100)

        async def answer() -> None:
            for index in reversed(range(100)):
                futures[index].set_result(index)
                if index % 7 == 0:
                    await asyncio.sleep(0)

        answering = asyncio.ensure_future(answer())
        groups = [group async for group in AnswerGroups(futures, wait_s=0.0)]
        await answering
        return groups

    groups = asyncio.run(main())
    assert sorted(i for group in groups for i in group) == list(range(100))
    assert all(group == sorted(group) for group in groups)


def test_no_futures_no_group() -> None:
    async def main() -> list[list[int]]:
        return [group async for group in AnswerGroups([], wait_s=JOIN_S)]

    assert asyncio.run(main()) == []
