"""The "when" grammar of the phrase parser (pure): finds the schedule words of a request and
notes what each says in a :class:`~personal_assistant.core.phrase_notes.When`, without
deciding the schedule yet.

Each rule is a regular expression over the lower-cased text and a note taking what its match
says. Rules run in order; the text a rule matched is blanked out (same length, so spans stay
indices into the text given) before the next rule runs, so a phrase is read once. Every
pattern is linear: fixed words and bounded repetitions, no nested open-ended repetition.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from personal_assistant.core import phrase_notes as n
from personal_assistant.core import phrase_words as w
from personal_assistant.core.phrase_notes import When

__all__ = ["read_when"]


Rule = tuple[re.Pattern[str], Callable[[When, re.Match[str]], None], str]


def _rule(pattern: str, note: Callable[[When, re.Match[str]], None], part: str = "when") -> Rule:
    return (re.compile(r"\b" + pattern + r"(?![\w'])"), note, part)


def _days(day_re: str) -> str:
    return day_re + r"s?(?:\s*(?:,|and|&|or)\s*(?:and\s+)?" + day_re + r"s?){0,6}"


_YEAR = r"(?:,?\s+(?P<year>\d{4}))?"
_UNTIL_TARGET = (
    r"(?:" + w.MONTH_RE + r"\s+\d{1,2}(?:st|nd|rd|th)?|(?:the\s+)?\d{1,2}(?:st|nd|rd|th)?\s+"
    r"(?:of\s+)?" + w.MONTH_RE + r")(?:,?\s+\d{4})?|" + w.MONTH_RE + r"(?:\s+\d{4})?|the\s+month|"
    r"this\s+month|the\s+week|this\s+week|\d{4}-\d{2}-\d{2}|the\s+\d{1,2}(?:st|nd|rd|th)|"
    r"tomorrow|today|tonight|yesterday|" + w.DAY_RE + "|" + n.ANY_TIME
)
_RULES: list[Rule] = [
    _rule(r"(?:in\s+)?(?P<zone>" + w.ZONE_RE + r")\s+time", n.note_zone, "zone"),
    _rule(r"(?:in\s+)?(?P<name>[a-z]+/[a-z_]+(?:/[a-z_]+)?)", n.note_iana, "zone"),
    _rule(r"(?:in\s+)?(?P<zone>utc|zulu)", n.note_zone, "zone"),
    _rule(
        r"(?:in\s+)?(?P<abbr>" + w.ABBREVIATION_RE + r")(?:\s+time)?", n.note_abbreviation, "zone"
    ),
    _rule(r"(?:in\s+)?(?P<place>[a-z]+)\s+time", n.note_place, "zone"),
    _rule(
        r"(?:every\s+|each\s+|on\s+|from\s+)?(?P<a>" + w.DAY_RE + r")\s*(?:to|through|thru|till|"
        r"until|-)\s*(?P<b>" + w.DAY_RE + r")",
        n.note_day_range,
    ),
    _rule(
        r"(?:except|but\s+not|excluding|apart\s+from)\s+(?:on\s+)?(?P<list>"
        + _days(w.DAY_RE)
        + ")",
        n.note_except,
    ),
    _rule(
        r"(?:until|till|through|up\s+to)\s+(?P<endof>the\s+end\s+of\s+)?(?P<target>"
        + _UNTIL_TARGET
        + ")",
        n.note_until,
        "ends",
    ),
    _rule(
        r"for\s+(?:the\s+next\s+)?(?P<n>" + w.NUMBER_RE + r")\s*(?P<unit>" + n.UNIT_RE + ")",
        n.note_lasting,
        "ends",
    ),
    _rule(
        r"(?:starting|beginning)(?:\s+(?:on|from))?(?=\s+(?:tomorrow|today|next|on|the|this|at|"
        r"\d|" + w.MONTH_RE + "|" + w.DAY_RE + r")\b)",
        n.note_starting,
    ),
    _rule(
        r"(?:every\s+|each\s+|on\s+)?(?:the\s+)?last\s+(?:week|work|business)\s?day\s+of\s+"
        r"(?:the|each|every)\s+month",
        n.note_last_workday,
    ),
    _rule(r"(?:on\s+)?(?:the\s+)?last\s+day\s+of\s+(?:the|each|every)\s+month", n.note_last_day),
    _rule(
        r"(?:every\s+|each\s+|on\s+)?(?:the\s+)?(?P<ords>"
        + n.ORD_RE
        + r"(?:\s*(?:,|and|&)\s*(?:the\s+)?"
        + n.ORD_RE
        + r"){0,4})\s+(?P<day>"
        + w.DAY_RE
        + r")\s+(?:of|in)\s+(?:the|each|every|a)\s+month",
        n.note_ordinal,
    ),
    _rule(
        r"(?:every|each)\s+(?P<ord>second|2nd|third|3rd|fourth|4th|fifth|5th|first|1st|last)"
        r"\s+(?P<day>" + w.DAY_RE + ")",
        n.note_second_weekday,
    ),
    _rule(
        r"(?:every|each)\s+other\s+(?P<unit>minute|hour|day|weekend|week|month|year|"
        + w.DAY_RE
        + ")",
        n.note_every_other,
    ),
    _rule(r"(?:every|each)\s+half\s+(?:an\s+)?hour", n.note_half_hour),
    _rule(
        r"(?:every|each)\s+(?P<n>" + w.NUMBER_RE + r")\s*(?P<unit>" + n.UNIT_RE + ")",
        n.note_every_n,
    ),
    _rule(
        r"(?P<n>once|twice|two|three|four|five|six|\d)\s+(?:times\s+)?(?:a|per|each)\s+"
        r"(?P<unit>day|week)|(?P<n2>twice)\s+daily",
        lambda when, m: n.note_times_count(when, m) if m["n"] else n.note_times_count_daily(when),
    ),
    _rule(
        r"(?:on\s+)?(?:(?P<wd>"
        + w.FULL_DAY_RE
        + r"),?\s+)?(?P<month>"
        + w.MONTH_RE
        + r")\.?\s+(?P<day>\d{1,2}(?:st|nd|rd|th)?)"
        + _YEAR,
        n.note_date_md,
    ),
    _rule(
        r"(?:on\s+)?(?:the\s+)?(?P<day>\d{1,2}(?:st|nd|rd|th)?)\s+(?:of\s+)?(?P<month>"
        + w.MONTH_RE
        + r")"
        + _YEAR,
        n.note_date_md,
    ),
    _rule(r"(?:on\s+)?(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})", n.note_iso_date),
    _rule(
        r"(?P<lead>(?:every|each)\s+month\s+)?(?:on\s+)?"
        r"(?:(?P<each>every|each)\s+(?:the\s+)?|the\s+)(?P<list>"
        + n.ORD_DAY_RE
        + r"(?:\s*(?:,|and|&)\s*(?:the\s+)?"
        + n.ORD_DAY_RE
        + r"){0,30})(?!\s+(?:"
        + w.DAY_RE
        + r")\b)(?P<every>\s+of\s+(?:the|each|every|a)\s+month)?",
        n.note_month_day,
    ),
    _rule(
        r"(?:every|each)\s+(?P<unit>minute|hour|single\s+day|day|week|month|year|"
        + n.PART_RE
        + r"(?:\s+and\s+"
        + n.PART_RE
        + ")?)",
        n.note_every_unit,
    ),
    _rule(r"(?:everyday|every\s+single\s+day)", lambda when, m: n.note_every_unit_daily(when)),
    _rule(
        r"(?:^(?P<word>daily|hourly|weekly|monthly|nightly)|(?P<w2>biweekly|fortnightly|bimonthly)|"
        r"(?P<w3>daily|hourly|weekly|monthly|nightly)"
        r"(?=\s*$|\s*[,.;:!]|\s+(?:at|on|from|until|till|"
        r"for|to|in|starting|and|between|every|@|\d)\b))",
        lambda when, m: n.note_adverb_any(when, m),
    ),
    _rule(r"(?:this|next|the)\s+weekend", n.note_this_weekend),
    _rule(r"(?:sixth|6th|seventh|7th)\s+" + w.DAY_RE, n.note_never),
    _rule(r"yesterday|last\s+(?:" + w.DAY_RE + r"|night|week|month)|\w+\s+ago|never", n.note_past),
    _rule(
        r"(?:every|each|on)?\s*(?:the\s+)?"
        r"(?P<part>weekdays?|weekends?|weekend\s+days?|work\s?days?|"
        r"working\s+days?|business\s+days?)",
        n.note_week_part,
    ),
    _rule(r"on\s+the\s+hour", n.note_on_the_hour),
    _rule(
        r"(?P<lead>every|each|on|next|this|coming)\s+(?P<list>" + _days(w.DAY_RE) + ")",
        n.note_weekday_list,
    ),
    _rule(r"(?P<lead>)(?P<list>" + _days(w.FULL_DAY_RE) + ")", n.note_weekday_list),
    _rule(
        r"(?:the\s+)?(?:day\s+after\s+tomorrow)(?P<part>)",
        lambda when, m: n.note_after_tomorrow(when),
    ),
    _rule(
        r"(?P<word>tomorrow|tmrw|tmr|tomorow|today|tonight)(?:\s+(?P<part>" + n.PART_RE + "))?",
        n.note_relative_day,
    ),
    _rule(r"this\s+(?P<part>" + n.PART_RE + ")", n.note_this_part),
    _rule(
        r"in\s+(?:(?P<half>half\s+an\s+hour)|(?P<n>"
        + w.NUMBER_RE
        + r")\s*(?P<unit>"
        + n.UNIT_RE
        + r")(?P<andhalf>\s+and\s+a\s+half)?(?:\s+and\s+(?P<n2>"
        + w.NUMBER_RE
        + r")\s*(?P<unit2>"
        + n.UNIT_RE
        + r"))?)",
        n.note_in_delta,
    ),
    _rule(
        r"(?:from|between)\s+(?P<a>"
        + n.ANY_TIME
        + r")\s*(?:to|until|till|and|-)\s*(?P<b>"
        + n.ANY_TIME
        + ")",
        n.note_hour_range,
    ),
    _rule(
        r"(?:at|@)\s+(?P<list>"
        + n.ANY_TIME
        + r"(?:\s*(?:,|and|&)\s*(?:at\s+)?"
        + n.ANY_TIME
        + r"){0,11})",
        n.note_times,
    ),
    _rule(
        r"(?P<list>\d{1,2}(?:[:.h]\d{2})?\s?(?:am|pm|a\.m\.?|p\.m\.?)|12\s+noon|noon|midday|"
        r"midnight|"
        r"\d{1,2}:\d{2}|\d{1,2}h\d{2}|\d{1,2}h)",
        n.note_times,
    ),
    _rule(r"(?:in\s+the\s+|at\s+)?(?P<part>" + n.PART_RE + ")", n.note_part),
]


def read_when(low: str) -> tuple[When, str]:
    """What the schedule words of ``low`` (the lower-cased request) say, and ``low`` with
    them blanked out."""
    when = When()
    rest = low
    for pattern, note, part in _RULES:
        for match in list(pattern.finditer(rest)):
            if not match[0].strip():
                continue
            note(when, match)
            start = match.start() + (len(match[0]) - len(match[0].lstrip()))
            when.spans.append((start, match.end(), part))
            rest = rest[: match.start()] + " " * len(match[0]) + rest[match.end() :]
    return when, rest
