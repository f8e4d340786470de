"""The words of the phrase parser (pure): numbers, weekdays, months, parts of the day, the
places whose time people name, and the regular-expression pieces built from them.

Every pattern piece here is linear: alternatives of fixed words and bounded digit runs, with
no nested open-ended repetition, so no input makes a match slow.
"""

from __future__ import annotations

from datetime import time

__all__ = [
    "ABBREVIATIONS",
    "ABBREVIATION_RE",
    "DAY_RE",
    "FOREIGN_WORDS",
    "FULL_DAY_RE",
    "HOUR_WORDS",
    "MINUTE_WORDS",
    "MONTHS",
    "MONTH_RE",
    "NUMBERS",
    "NUMBER_RE",
    "ORDINALS",
    "PARTS_OF_DAY",
    "TIME_RE",
    "WEEKDAYS",
    "WORD_TIME_RE",
    "ZONES",
    "ZONE_RE",
    "amount",
    "number",
    "weekday",
]

NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "forty-five": 45, "sixty": 60,
    "ninety": 90, "zero": 0,
}  # fmt: skip
NUMBER_RE = (
    r"(?:-?\d{1,4}(?:\.\d{1,2})?|(?:"
    + "|".join(sorted(NUMBERS, key=len, reverse=True))
    + r")(?=\s))"
)
HOUR_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
_HOUR_WORD_RE = "|".join(sorted(HOUR_WORDS, key=len, reverse=True))
MINUTE_WORDS = {"five": 5, "ten": 10, "quarter": 15, "a quarter": 15, "twenty": 20,
                "twenty-five": 25, "half": 30}  # fmt: skip
_AMPM = r"(?:\s?(?:am|pm|a\.m\.?|p\.m\.?))"
#: A time of day in words: "half past nine", "a quarter to 9", "seven thirty pm", "nine".
WORD_TIME_RE = (
    r"(?:(?:a\s+)?(?:quarter|half|twenty-five|twenty|ten|five)\s+(?:past|to)\s+(?:\d{1,2}|"
    + _HOUR_WORD_RE
    + r")|(?:"
    + _HOUR_WORD_RE
    + r")(?:\s+(?:thirty|fifteen|forty-five|o'clock))?)"
    + _AMPM
    + "?"
)
ORDINALS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4,
    "4th": 4, "fifth": 5, "5th": 5, "last": -1,
}  # fmt: skip

WEEKDAYS = {
    "monday": 0, "mon": 0, "tuesday": 1, "tues": 1, "tue": 1, "wednesday": 2, "wed": 2,
    "thursday": 3, "thurs": 3, "thur": 3, "thu": 3, "friday": 4, "fri": 4,
    "saturday": 5, "sat": 5, "sunday": 6, "sun": 6,
}  # fmt: skip
DAY_RE = r"(?:" + "|".join(sorted(WEEKDAYS, key=len, reverse=True)) + r")"
FULL_DAY_RE = r"(?:" + "|".join(name for name in WEEKDAYS if name.endswith("day")) + r")"

MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}  # fmt: skip
MONTH_RE = r"(?:" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")"

#: A time of day: "9", "9am", "9:30", "9.30 pm", "17:45", "noon", "midnight".
TIME_RE = (
    r"(?:12\s+noon|noon|midday|midnight|\d{1,2}h(?![\w'])|\d{1,2}(?:[:.h]\d{2})?"
    r"(?:\s?(?:am|pm|a\.m\.?|p\.m\.?|o'clock))?)"
)

#: The time a part of the day names when no time is given, and whether its hours are p.m.
PARTS_OF_DAY: dict[str, tuple[time, bool]] = {
    "morning": (time(9, 0), False),
    "afternoon": (time(15, 0), True),
    "evening": (time(19, 0), True),
    "night": (time(20, 0), True),
    "tonight": (time(20, 0), True),
}

#: Places and abbreviations people name a time in, and their IANA zones.
ZONES = {
    "paris": "Europe/Paris", "london": "Europe/London", "berlin": "Europe/Berlin",
    "madrid": "Europe/Madrid", "rome": "Europe/Rome", "amsterdam": "Europe/Amsterdam",
    "brussels": "Europe/Brussels", "lisbon": "Europe/Lisbon", "dublin": "Europe/Dublin",
    "zurich": "Europe/Zurich", "moscow": "Europe/Moscow", "athens": "Europe/Athens",
    "new york": "America/New_York", "nyc": "America/New_York", "eastern": "America/New_York",
    "chicago": "America/Chicago", "central": "America/Chicago", "denver": "America/Denver",
    "mountain": "America/Denver", "los angeles": "America/Los_Angeles",
    "la": "America/Los_Angeles", "pacific": "America/Los_Angeles",
    "san francisco": "America/Los_Angeles", "toronto": "America/Toronto",
    "montreal": "America/Toronto", "vancouver": "America/Vancouver",
    "sao paulo": "America/Sao_Paulo", "mexico city": "America/Mexico_City",
    "tokyo": "Asia/Tokyo", "singapore": "Asia/Singapore", "hong kong": "Asia/Hong_Kong",
    "shanghai": "Asia/Shanghai", "beijing": "Asia/Shanghai", "seoul": "Asia/Seoul",
    "mumbai": "Asia/Kolkata", "delhi": "Asia/Kolkata", "india": "Asia/Kolkata",
    "dubai": "Asia/Dubai", "sydney": "Australia/Sydney", "melbourne": "Australia/Melbourne",
    "auckland": "Pacific/Auckland", "utc": "UTC", "zulu": "UTC",
    "uk": "Europe/London",
}  # fmt: skip
ZONE_RE = r"(?:" + "|".join(sorted(ZONES, key=len, reverse=True)) + r")"
#: Zone abbreviations: ambiguous or fixed offsets people rarely mean; refused, with the closest.
ABBREVIATIONS = {
    "est": "America/New_York", "edt": "America/New_York", "cst": "America/Chicago",
    "cdt": "America/Chicago", "mst": "America/Denver", "mdt": "America/Denver",
    "pst": "America/Los_Angeles", "pdt": "America/Los_Angeles", "cet": "Europe/Paris",
    "cest": "Europe/Paris", "bst": "Europe/London", "ist": None, "jst": "Asia/Tokyo",
    "aest": "Australia/Sydney", "gmt": "Europe/London",
}  # fmt: skip
ABBREVIATION_RE = r"(?:" + "|".join(sorted(ABBREVIATIONS, key=len, reverse=True)) + r")"

#: Common words of other languages: a phrase holding one is refused as not English.
FOREIGN_WORDS = frozenset(
    [
        "demain",
        "aujourd'hui",
        "chaque",
        "tous",
        "les",
        "jours",
        "lundi",
        "mardi",
        "mercredi",
        "jeudi",
        "vendredi",
        "samedi",
        "dimanche",
        "rappelle",
        "rappelez",
        "heures",
        "semaine",
        "matin",
        "soir",
        "morgen",
        "jeden",
        "jede",
        "täglich",
        "uhr",
        "erinnere",
        "montag",
        "dienstag",
        "mittwoch",
        "donnerstag",
        "freitag",
        "samstag",
        "sonntag",
        "mañana",
        "todos",
        "cada",
        "recuérdame",
        "recuerdame",
        "lunes",
        "martes",
        "miércoles",
        "jueves",
        "viernes",
        "sábado",
        "domingo",
        "semana",
        "ricordami",
        "domani",
        "ogni",
        "giorno",
    ]
)


def number(word: str) -> int:
    """The value of a number word or digits ("3", "three", "an")."""
    return int(word) if word.lstrip("-").isdigit() else NUMBERS[word]


def amount(word: str) -> float:
    """The value of an amount: digits, a decimal ("1.5") or a number word."""
    return float(word) if word[:1].isdigit() or word[:1] == "-" else float(NUMBERS[word])


def weekday(word: str) -> int:
    """0 (Monday) .. 6 (Sunday) for a weekday name, full, short or plural ("mondays")."""
    word = word.rstrip(".")
    if word not in WEEKDAYS and word.endswith("s"):
        word = word[:-1]
    return WEEKDAYS[word]
