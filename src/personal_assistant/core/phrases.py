"""Requests in plain English made into tasks (pure): :func:`parse_request`.

``parse_request("remind me every weekday at 8:30 to stretch", now, "Europe/Paris")`` gives a
:class:`Proposal`: the title "Stretch", the instruction "Remind me to stretch", the task type
and a weekly schedule in its JSON form (:mod:`~personal_assistant.core.schedule_json`). A
request it cannot read for sure gives a :class:`Refusal` saying why, with the closest reading
when it has one, to be offered as a question: the parser never guesses silently.

The schedule words are read by a small grammar (:mod:`phrase_when`, :mod:`phrase_notes`,
:mod:`phrase_build`) following docs/nl-policy.md; docs/nl-evaluation.md says why no
date-parsing library is used. Input is bounded: a text over :data:`MAX_CHARS` characters is
refused before any work.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from personal_assistant.core import phrase_words as w
from personal_assistant.core.phrase_build import build_schedule
from personal_assistant.core.phrase_when import read_when
from personal_assistant.core.schedule_json import parse_schedule, schedule_to_dict
from personal_assistant.core.states import TaskType
from personal_assistant.core.wallclock import check_zone
from personal_assistant.errors import ScheduleError

__all__ = ["MAX_CHARS", "Proposal", "Refusal", "Span", "parse_request"]

MAX_CHARS = 500
"""The longest request read; a longer one is refused before any work."""

_TITLE_CHARS = 80
_LEAD_RE = re.compile(
    r"(?:(?:hey|hi|ok|okay)\b[\s,]*)?(?:please\s+)?(?:(?:can|could|would|will)\s+you\s+)?"
    r"(?:please\s+)?(?P<remind>remind\s+me\b|(?:don't|do\s+not)\s+let\s+me\s+forget\b)?"
    r"\s*(?P<joiner>to\b|about\b|that\b)?\s*",
    re.IGNORECASE,
)
_EDGE_WORDS = frozenset({"to", "at", "on", "and", "the", "of", "in", "for", "from", "by", "me"})
_SCHEDULE_WORDS = re.compile(
    r"\b(?:every|each|yearly|annually|am|pm|tomorrow|tonight|noon|midnight|o'clock|until|till|"
    r"fortnight\w*|biweekly|weekdays?|weekends?|twice|thrice|except|starting|"
    r"(?:an?|one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|thirty|few)\s+"
    r"(?:minutes?|hours?|days?|weeks?|months?)|"
    r"" + w.FULL_DAY_RE + r"s?|january|february|april|june|july|august|september|october|"
    r"november|december|\d{1,2}[:.]\d{2}|\d+\s*(?:am|pm|h|minutes?|hours?|days?|weeks?|"
    r"months?|times)|\d{1,2}(?:st|nd|rd|th)|(?:at|on|by|before|after|around|from|to|between)"
    r"\s+\d+|(?:19|20)\d\d|(?:half|quarter)\s+(?:past|to)|(?:next|last|this|coming)\s+"
    r"(?:week|month|year|weekend)|times\s+(?:a|per|each)|(?:a|per)\s+(?:week|month|year))\b"
)
_SUMMARY_RE = re.compile(r"\b(?:summari[sz]e|summary|digest|brief\w*|recap|overview)\b", re.I)
_CHECK_RE = re.compile(r"\b(?:check|monitor|look\s+up|watch|scan|verify|fetch)\b", re.I)


@dataclass(frozen=True)
class Span:
    """Where in the text a part came from: ``text[start:end]``."""

    start: int
    end: int
    part: str  # "when" (the schedule words), "zone", "ends", "title"


@dataclass(frozen=True)
class Proposal:
    """A task read from a request: what to create, and where each part came from."""

    title: str
    instruction: str
    task_type: str
    schedule: dict[str, Any]
    spans: tuple[Span, ...]
    source: str = "offline"
    """Who read it: "offline" (this parser), "offline+model" (both, alike) or "model"."""


@dataclass(frozen=True)
class Refusal:
    """A request not read for sure: why, and the closest reading to offer as a question."""

    reason: str
    closest: Proposal | None
    field: str = "text"
    other: Proposal | None = None
    """A second, different reading to offer beside ``closest`` (the model's, when it differs)."""


def parse_request(text: str, now: datetime, tz: str) -> Proposal | Refusal:
    """The task ``text`` asks for, read at ``now`` (aware) for a user in zone ``tz``."""
    if now.tzinfo is None:
        raise ValueError("parse_request takes an aware datetime")
    check_zone(tz)
    if not isinstance(text, str) or not text.strip():
        return Refusal("The request is empty: say what to do and when.", None)
    if len(text) > MAX_CHARS:
        return Refusal(
            f"The request is {len(text)} characters long; at most {MAX_CHARS} are read.", None
        )
    language = _language_problem(text)
    if language is not None:
        return Refusal(language, None)
    low = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    when, rest = read_when(low)
    zone = when.zone or tz
    try:
        check_zone(zone)
    except ScheduleError:
        return Refusal(f"Unknown time zone {zone!r}.", None)
    built = build_schedule(when, now, zone)
    kept = "".join(c if rest[i] == low[i] else " " for i, c in enumerate(text))
    leftover = _SCHEDULE_WORDS.search(kept.lower())
    doubts = list(built.doubts)
    if leftover is not None:
        doubts.append(f"the words {_near(kept, leftover.start(), leftover.end())!r} were not read")
    if built.schedule is None:
        reason = doubts[0] if doubts else "no date, time or repetition was found"
        return Refusal(f"Could not read when to do this: {reason}.", None)
    try:
        schedule = schedule_to_dict(parse_schedule(built.schedule))
    except ScheduleError as exc:
        return Refusal(f"Could not make a schedule: {exc}.", None)
    proposal = _proposal(text, kept, schedule, when.spans)
    if proposal.title == "":
        proposal = Proposal(
            "Reminder", "Remind me", proposal.task_type, proposal.schedule, proposal.spans
        )
    if doubts:
        return Refusal(f"Not sure: {'; '.join(doubts)}.", proposal)
    return proposal


def _language_problem(text: str) -> str | None:
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in text):
        return "The request holds control characters; type it as plain text."
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "The request has no words: say what to do and when, in English."
    foreign = sum(not c.isascii() for c in letters)
    if foreign * 5 > len(letters):
        return "The request does not look like English; only English is read for now."
    words = set(re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", text.lower()))
    if len(words & w.FOREIGN_WORDS) >= 1 and not words & {"remind", "every", "at", "the"}:
        return "The request does not look like English; only English is read for now."
    return None


def _near(text: str, start: int, end: int) -> str:
    return " ".join(text[max(0, start - 12) : end + 12].split())


def _proposal(
    text: str, kept: str, schedule: dict[str, Any], found: list[tuple[int, int, str]]
) -> Proposal:
    lead = _LEAD_RE.match(kept, len(kept) - len(kept.lstrip()))
    assert lead is not None
    words = kept[lead.end() :].split()
    while words and words[0].lower().strip(",.;:!") in (_EDGE_WORDS - {"the"}) | {""}:
        words.pop(0)
    while words and words[-1].lower().strip(",.;:!?") in _EDGE_WORDS | {""}:
        words.pop()
    action = " ".join(words).strip(" ,.;:!?")
    title = action[:1].upper() + action[1:]
    if len(title) > _TITLE_CHARS:
        title = title[: _TITLE_CHARS - 1].rsplit(" ", 1)[0] + "…"
    if lead["remind"]:
        joiner = lead["joiner"] or "to"
        instruction = f"Remind me {joiner.lower()} {action}" if action else "Remind me"
    else:
        instruction = title if len(action) <= _TITLE_CHARS else action[:1].upper() + action[1:]
    spans = [Span(start, end, part) for start, end, part in sorted(found)]
    if action:
        start = text.find(words[0], lead.end()) if words else -1
        if start >= 0:
            end = kept.rfind(words[-1]) + len(words[-1])
            spans.append(Span(start, end, "title"))
    return Proposal(
        title=title,
        instruction=instruction,
        task_type=_task_type(action, bool(lead["remind"])),
        schedule=schedule,
        spans=tuple(sorted(spans, key=lambda s: (s.start, s.end))),
    )


def _task_type(action: str, reminder: bool) -> str:
    if reminder:
        return TaskType.REMINDER.value
    if _SUMMARY_RE.search(action):
        return TaskType.PERIODIC_TASK.value
    if _CHECK_RE.search(action):
        return TaskType.AUTOMATED_TASK.value
    return TaskType.REMINDER.value
