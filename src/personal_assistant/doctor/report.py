"""What ``pa doctor`` found: one :class:`Check` per line of the report, and the :class:`Report`.

Pure data: the checks build it, the renderers (:mod:`.render`) print it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from personal_assistant.redaction import one_line as one_line


class Verdict(StrEnum):
    """A check's outcome, in rising order of severity (``skip``: not applicable here)."""

    SKIP = "skip"
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


#: Exit codes of ``pa doctor`` (documented in docs/howto-validate.md).
EXIT_OK, EXIT_WARNINGS, EXIT_FAILURES = 0, 1, 2


@dataclass(frozen=True)
class Check:
    """One line of the report.

    ``id`` is dotted, its first part the section (``database.migrations``); ``evidence`` says
    what was seen, with figures; ``fix`` says what to do about a warning or a failure;
    ``figures`` carries the measured numbers (milliseconds end in ``_ms``, seconds in ``_s``).
    """

    id: str
    title: str
    verdict: Verdict
    evidence: str
    fix: str = ""
    figures: Mapping[str, float] = field(default_factory=dict)

    @property
    def section(self) -> str:
        return self.id.split(".", 1)[0]


def passed(id: str, title: str, evidence: str, **figures: float) -> Check:
    return Check(id, title, Verdict.PASS, evidence, "", figures)


def warned(id: str, title: str, evidence: str, fix: str, **figures: float) -> Check:
    return Check(id, title, Verdict.WARN, evidence, fix, figures)


def failed(id: str, title: str, evidence: str, fix: str, **figures: float) -> Check:
    return Check(id, title, Verdict.FAIL, evidence, fix, figures)


def skipped(id: str, title: str, why: str) -> Check:
    return Check(id, title, Verdict.SKIP, why)


@dataclass(frozen=True)
class Report:
    """Every check of one ``pa doctor`` run, and what it ran against.

    ``environment``: what a reader of the report needs to know first (deployment kind, the
    database and broker URLs with passwords masked, versions, host), in display order.
    """

    checks: tuple[Check, ...]
    environment: Mapping[str, str]
    started_at: datetime
    finished_at: datetime

    @property
    def counts(self) -> Counter[Verdict]:
        return Counter(check.verdict for check in self.checks)

    @property
    def exit_code(self) -> int:
        """2 when a check failed, 1 when one warned, else 0."""
        counts = self.counts
        if counts[Verdict.FAIL]:
            return EXIT_FAILURES
        if counts[Verdict.WARN]:
            return EXIT_WARNINGS
        return EXIT_OK

    def by_id(self, check_id: str) -> Check:
        for check in self.checks:
            if check.id == check_id:
                return check
        raise KeyError(check_id)
