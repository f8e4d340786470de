"""The package's one exception root and its groups.

Each error carries data (the offending ``field`` where there is one) and maps to an HTTP status
and a CLI exit code in one place: :data:`HTTP_STATUS` and :data:`EXIT_CODES`.
"""

from __future__ import annotations


class PersonalAssistantError(Exception):
    """Root of every error this package raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class ValidationError(PersonalAssistantError):
    """Bad input: names the field and the reason."""


class ScheduleError(ValidationError):
    """A schedule that cannot be built or has no firing."""


class NotFoundError(PersonalAssistantError):
    """No such object, or it belongs to someone else (the two are not told apart)."""


class ConflictError(PersonalAssistantError):
    """The object is not in a state that allows the operation."""


class AuthenticationError(PersonalAssistantError):
    """No credentials, or credentials that name no one (unknown, revoked): never says which."""


class ForbiddenError(PersonalAssistantError):
    """The caller is known but may not do this (an admin's operation)."""


class ConfigurationError(PersonalAssistantError):
    """A setting is missing or wrong."""


class AgentError(PersonalAssistantError):
    """The agent failed to answer. ``permanent`` errors are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class DeliveryError(PersonalAssistantError):
    """A notification could not be delivered. ``permanent`` errors are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class QuotaError(PersonalAssistantError):
    """A per-user limit would be passed: ``field`` names its setting, ``limit`` its value."""

    def __init__(self, message: str, *, field: str, limit: int) -> None:
        super().__init__(message, field=field)
        self.limit = limit


HTTP_STATUS: dict[type[PersonalAssistantError], int] = {
    ValidationError: 422,
    QuotaError: 429,
    AuthenticationError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    ConfigurationError: 500,
    AgentError: 502,
    DeliveryError: 502,
    PersonalAssistantError: 500,
}

EXIT_CODES: dict[type[PersonalAssistantError], int] = {
    ValidationError: 2,
    NotFoundError: 3,
    ConflictError: 4,
    ConfigurationError: 5,
    AgentError: 6,
    DeliveryError: 6,
    QuotaError: 7,
    AuthenticationError: 8,
    ForbiddenError: 8,
    PersonalAssistantError: 1,
}


def _lookup(table: dict[type[PersonalAssistantError], int], error: PersonalAssistantError) -> int:
    for cls in type(error).__mro__:
        if cls in table:
            return table[cls]
    return table[PersonalAssistantError]


def http_status(error: PersonalAssistantError) -> int:
    return _lookup(HTTP_STATUS, error)


def exit_code(error: PersonalAssistantError) -> int:
    return _lookup(EXIT_CODES, error)
