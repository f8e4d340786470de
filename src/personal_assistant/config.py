"""Settings: one object, read from the environment at start-up, never at import.

With nothing set, the embedded default runs with no external service: SQLite files under
``var/`` for the database and for Celery's broker (kombu's SQLAlchemy transport). Set
``DATABASE_URL`` and ``REDIS_URL`` for the real stack. Secrets are ``SecretStr`` and every
URL is shown with its password masked (:func:`~personal_assistant.redaction.mask_url`).
"""

from __future__ import annotations

import binascii
import os
from base64 import b64decode
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from personal_assistant import redaction
from personal_assistant.errors import ConfigurationError
from personal_assistant.outbound.policy import Policy, parse_allow
from personal_assistant.secret_files import read_secret_file

AgentKind = Literal["offline", "openai"]
#: Celery pools a worker may run (Celery lets the configured pool win over ``-P prefork``).
WorkerPool = Literal["threads", "prefork", "solo"]
#: The schemes REDIS_URL may have (TLS: ``rediss``).
REDIS_SCHEMES = ("redis", "rediss")
#: The schemes of a RabbitMQ CELERY_BROKER_URL (kombu's py-amqp transport; TLS: ``amqps``).
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
#: The levels LOG_LEVEL may name, as :mod:`logging` spells them.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: How log lines are written: ``event=<name> key=value ...`` text, or one JSON object a line.
LogFormat = Literal["text", "json"]


#: How to make a key for CHANNEL_KEYS.
FERNET_KEY_HINT = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


def is_fernet_key(text: str) -> bool:
    """Is ``text`` a Fernet key: 32 bytes in URL-safe base64 (checked without cryptography)?"""
    try:
        return len(b64decode(text, altchars=b"-_", validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def _read_secret_file(name: str, path: str | None) -> str | None:
    """The value of ``<name>_FILE`` (a Docker secret), read by :func:`read_secret_file`.

    A missing, empty, non-regular (a FIFO) or oversized file is an error naming ``<name>_FILE``.
    """
    if not path:
        return None
    return read_secret_file(name, path)


class Settings(BaseSettings):
    """Every setting, with its environment variable name (case-insensitive)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    home: Path = Field(default=Path("."), validation_alias="PA_HOME")
    database_url_raw: SecretStr | None = Field(default=None, validation_alias="DATABASE_URL")
    redis_url_raw: SecretStr | None = Field(default=None, validation_alias="REDIS_URL")
    broker_url_raw: SecretStr | None = Field(default=None, validation_alias="CELERY_BROKER_URL")
    result_backend_raw: SecretStr | None = Field(
        default=None, validation_alias="CELERY_RESULT_BACKEND"
    )
    redis_key_prefix: str = Field(default="", validation_alias="REDIS_KEY_PREFIX")
    log_dir_raw: Path | None = Field(default=None, validation_alias="LOG_DIR")
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    log_format: LogFormat = Field(default="text", validation_alias="LOG_FORMAT")

    agent: AgentKind = Field(default="offline", validation_alias="AGENT")
    agent_base_url: str | None = Field(default=None, validation_alias="AGENT_BASE_URL")
    agent_model: str = Field(default="gpt-4o-mini", validation_alias="AGENT_MODEL")
    agent_api_key: SecretStr | None = Field(default=None, validation_alias="AGENT_API_KEY")
    # Fernet keys sealing channel URLs at rest, comma-separated: the first seals, all open
    # (channel_keys.py; unset on the embedded default: var/channel.key, made once).
    channel_keys_raw: SecretStr | None = Field(default=None, validation_alias="CHANNEL_KEYS")
    agent_timeout_seconds: float = Field(default=60.0, gt=0, validation_alias="AGENT_TIMEOUT")
    agent_max_tokens: int = Field(
        default=800, ge=1, le=1_000_000, validation_alias="AGENT_MAX_TOKENS"
    )
    agent_temperature: float = Field(default=0.3, ge=0, le=2, validation_alias="AGENT_TEMPERATURE")
    agent_max_attempts: int = Field(default=3, ge=1, le=10, validation_alias="AGENT_MAX_ATTEMPTS")
    # Rate limits on agent calls across all workers (Redis token buckets); unset: no limit.
    agent_rate_per_second: float | None = Field(
        default=None, gt=0, validation_alias="AGENT_RATE_PER_SECOND"
    )
    agent_burst: int | None = Field(default=None, ge=1, validation_alias="AGENT_BURST")
    agent_user_rate_per_second: float | None = Field(
        default=None, gt=0, validation_alias="AGENT_USER_RATE_PER_SECOND"
    )
    agent_user_burst: int | None = Field(default=None, ge=1, validation_alias="AGENT_USER_BURST")

    tick_seconds: float = Field(default=0.5, gt=0, le=60, validation_alias="SCHEDULER_TICK_SECONDS")
    claim_batch: int = Field(default=1000, ge=1, le=10_000, validation_alias="SCHEDULER_BATCH")
    runs_per_message: int = Field(default=100, ge=1, le=1000, validation_alias="RUNS_PER_MESSAGE")
    misfire_grace_seconds: float = Field(default=300.0, ge=0, validation_alias="MISFIRE_GRACE")
    catchup_limit: int = Field(default=100, ge=1, le=10_000, validation_alias="CATCHUP_LIMIT")
    # Fair dispatch (runs/fair_dispatch.py); 0: no limit.
    user_dispatch_limit: int = Field(
        default=100, ge=0, le=1_000_000, validation_alias="USER_DISPATCH_LIMIT"
    )
    max_runs_per_hour: int = Field(default=0, ge=0, validation_alias="MAX_RUNS_PER_HOUR")

    default_max_retries: int = Field(default=3, ge=0, le=20, validation_alias="MAX_RETRIES")
    retry_base_seconds: float = Field(default=10.0, gt=0, validation_alias="RETRY_BASE_SECONDS")
    retry_max_seconds: float = Field(default=600.0, gt=0, validation_alias="RETRY_MAX_SECONDS")
    pause_after_failures: int = Field(default=3, ge=1, validation_alias="PAUSE_AFTER_FAILURES")

    run_timeout_seconds: float = Field(default=300.0, gt=0, validation_alias="RUN_TIMEOUT")
    lease_margin_seconds: float = Field(default=30.0, gt=0, validation_alias="LEASE_MARGIN")
    dispatch_lease_seconds: float = Field(default=60.0, gt=0, validation_alias="DISPATCH_LEASE")
    visibility_timeout_seconds: int = Field(
        default=3600, ge=60, validation_alias="BROKER_VISIBILITY_TIMEOUT"
    )
    reaper_interval_seconds: float = Field(default=15.0, gt=0, validation_alias="REAPER_INTERVAL")
    worker_concurrency: int = Field(
        default=16, ge=1, le=1024, validation_alias="WORKER_CONCURRENCY"
    )
    worker_pool: WorkerPool = Field(default="threads", validation_alias="WORKER_POOL")
    # Celery's task events (Flower, `celery events`): a few broker messages per task; off.
    worker_send_task_events: bool = Field(default=False, validation_alias="WORKER_SEND_TASK_EVENTS")
    # Prometheus /metrics of a worker or scheduler process on this port (0: off), and address.
    metrics_port: int = Field(default=0, ge=0, le=65535, validation_alias="METRICS_PORT")
    metrics_bind: str = Field(default="127.0.0.1", validation_alias="METRICS_BIND")
    # RabbitMQ only: declare the five queues as quorum queues (replicated; no priorities).
    broker_quorum_queues: bool = Field(default=False, validation_alias="BROKER_QUORUM_QUEUES")
    delivery_lease_seconds: float = Field(default=60.0, gt=0, validation_alias="DELIVERY_LEASE")
    # Retention of finished runs (0: keep them forever) and exports.
    retention_days: int = Field(default=90, ge=0, validation_alias="RETENTION_DAYS")
    retention_batch: int = Field(default=1000, ge=1, le=100_000, validation_alias="RETENTION_BATCH")
    export_dir_raw: Path | None = Field(default=None, validation_alias="EXPORT_DIR")
    export_ttl_hours: float = Field(default=24.0, gt=0, validation_alias="EXPORT_TTL_HOURS")
    max_in_flight: int = Field(default=500, ge=1, le=100_000, validation_alias="MAX_IN_FLIGHT")
    # Per-user quotas (tasks/quotas.py); 0: no limit.
    max_active_tasks_per_user: int = Field(
        default=10_000, ge=0, validation_alias="MAX_ACTIVE_TASKS_PER_USER"
    )
    max_imports_per_hour: int = Field(default=10_000, ge=0, validation_alias="MAX_IMPORTS_PER_HOUR")
    heartbeat_interval_seconds: float = Field(
        default=10.0, gt=0, le=3600, validation_alias="HEARTBEAT_INTERVAL"
    )
    # The HTTP API (`pa serve`): the largest request body, and the origins CORS allows
    # (comma-separated; empty: CORS off).
    api_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, le=100 * 1_048_576, validation_alias="API_MAX_BODY_BYTES"
    )
    api_cors_origins: str = Field(default="", validation_alias="API_CORS_ORIGINS")
    # Requests per API key and minute, in each `pa serve` process (a token bucket holding up
    # to API_RATE_BURST): past it, 429 with Retry-After. 0: no limit.
    api_rate_limit_per_minute: int = Field(
        default=600, ge=0, le=1_000_000, validation_alias="API_RATE_LIMIT_PER_MINUTE"
    )
    api_rate_burst: int = Field(default=60, ge=1, le=100_000, validation_alias="API_RATE_BURST")
    # The built-in alert evaluator (alerts/): how often it looks (0: off), how long a condition
    # holds before the admins are told, and the least time between two openings of one alert.
    # Each threshold carries its unit in its name: seconds, or a ratio (a fraction of 1).
    alert_interval_seconds: float = Field(
        default=30.0, ge=0, le=3600, validation_alias="ALERT_INTERVAL_SECONDS"
    )
    alert_open_after_seconds: float = Field(
        default=120.0, ge=0, le=86_400, validation_alias="ALERT_OPEN_AFTER_SECONDS"
    )
    alert_cooldown_seconds: float = Field(
        default=3600.0, ge=0, le=7 * 86_400, validation_alias="ALERT_COOLDOWN_SECONDS"
    )
    alert_window_seconds: float = Field(
        default=600.0, ge=60, le=86_400, validation_alias="ALERT_WINDOW_SECONDS"
    )
    alert_scheduler_silent_seconds: float = Field(
        default=60.0, gt=0, validation_alias="ALERT_SCHEDULER_SILENT_SECONDS"
    )
    alert_lateness_p99_seconds: float = Field(
        default=5.0, gt=0, validation_alias="ALERT_LATENESS_P99_SECONDS"
    )
    alert_oldest_queued_seconds: float = Field(
        default=300.0, gt=0, validation_alias="ALERT_OLDEST_QUEUED_SECONDS"
    )
    alert_queue_backlog_seconds: float = Field(
        default=300.0, gt=0, validation_alias="ALERT_QUEUE_BACKLOG_SECONDS"
    )
    alert_failure_ratio: float = Field(default=0.2, validation_alias="ALERT_FAILURE_RATIO")
    alert_agent_error_ratio: float = Field(default=0.5, validation_alias="ALERT_AGENT_ERROR_RATIO")
    # What reading one calendar feed may use, in a process of its own (calendars/sandbox.py):
    # address space, and CPU time (the wall-clock deadline is three times the latter).
    calendar_parse_memory_mb: int = Field(
        default=512, ge=128, le=65_536, validation_alias="CALENDAR_PARSE_MEMORY_MB"
    )
    calendar_parse_seconds: int = Field(
        default=10, ge=1, le=3600, validation_alias="CALENDAR_PARSE_SECONDS"
    )
    # Networks that feed fetches and channels may reach although internal (outbound/policy.py).
    outbound_allow: str = Field(default="", validation_alias="OUTBOUND_ALLOW")

    @field_validator(
        "database_url_raw", "redis_url_raw", "broker_url_raw", "result_backend_raw", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("redis_url_raw")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        """Broker, result backend and rate limits all read REDIS_URL: a wrong scheme fails late.

        Checked here so every process refuses it at start-up with one line, instead of a worker
        or beat dying on its own with a traceback in its log.
        """
        if value is None:
            return None
        scheme = urlsplit(value.get_secret_value()).scheme.lower()
        if scheme not in REDIS_SCHEMES:
            found = f" (it starts with {scheme}://)" if scheme else ""
            raise ConfigurationError(
                f"must be a redis:// or rediss:// URL{found}", field="REDIS_URL"
            )
        return value

    @field_validator("outbound_allow")
    @classmethod
    def _outbound_networks(cls, value: str) -> str:
        """Comma-separated CIDR networks; a typo refuses to start instead of allowing less."""
        try:
            parse_allow(value)
        except ValueError as exc:
            raise ConfigurationError(str(exc), field="OUTBOUND_ALLOW") from None
        return value

    @field_validator("channel_keys_raw", mode="before")
    @classmethod
    def _fernet_keys(cls, value: object) -> object:
        """Each comma-separated item a Fernet key (empty: unset); an error never shows one."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(text, str):
            return value
        if text == "":
            return None
        items = text.split(",")
        for number, item in enumerate(items, 1):
            if not is_fernet_key(item.strip()):
                raise ConfigurationError(
                    f"item {number} of {len(items)} is not a Fernet key (44 URL-safe base64 "
                    f"characters); make one with {FERNET_KEY_HINT}",
                    field="CHANNEL_KEYS",
                )
        return value

    @field_validator("alert_failure_ratio", "alert_agent_error_ratio")
    @classmethod
    def _ratio(cls, value: float, info: ValidationInfo) -> float:
        """A fraction of 1: ``0.2`` is 20 %; a percentage (``20``) is refused, not misread."""
        if not 0 < value <= 1:
            name = str(info.field_name).upper()
            hint = (
                f" ({value:g} % is {value / 100:g})"
                if 1 < value <= 100 and value.is_integer()
                else ""
            )
            raise ConfigurationError(
                f"must be a ratio, a fraction above 0 and at most 1{hint}; got {value:g}",
                field=name,
            )
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        """A level :mod:`logging` knows, upper-cased (``info`` is fine, ``LOUD`` is not)."""
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ConfigurationError(
                f"unknown level {value!r}; use one of {', '.join(LOG_LEVELS)}", field="LOG_LEVEL"
            )
        return level

    @model_validator(mode="after")
    def _quorum_queues_need_rabbitmq(self) -> Settings:
        """Quorum queues are RabbitMQ's: on another broker the setting would silently do nothing."""
        if not self.broker_quorum_queues:
            return self
        scheme = urlsplit(self.broker_url).scheme.lower()
        if scheme not in AMQP_SCHEMES:
            raise ConfigurationError(
                f"needs a RabbitMQ broker, CELERY_BROKER_URL=amqp://... (it is {scheme}://)",
                field="BROKER_QUORUM_QUEUES",
            )
        return self

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.run_timeout_seconds + self.lease_margin_seconds + 30 > (
            self.visibility_timeout_seconds
        ):
            raise ConfigurationError(
                "must exceed RUN_TIMEOUT + LEASE_MARGIN by at least 30 s, or tasks are "
                "redelivered while running",
                field="BROKER_VISIBILITY_TIMEOUT",
            )
        if self.agent == "openai" and not self.agent_base_url:
            raise ConfigurationError("is required when AGENT=openai", field="AGENT_BASE_URL")
        self._check_rate_limits()
        return self

    def _check_rate_limits(self) -> None:
        for rate, burst, prefix in (
            (self.agent_rate_per_second, self.agent_burst, "AGENT"),
            (self.agent_user_rate_per_second, self.agent_user_burst, "AGENT_USER"),
        ):
            if burst is not None and rate is None:
                raise ConfigurationError(
                    f"is set but {prefix}_RATE_PER_SECOND is not", field=f"{prefix}_BURST"
                )
            if rate is not None and self.redis_url_raw is None:
                raise ConfigurationError(
                    "needs REDIS_URL: the limit is kept in Redis, shared by every worker",
                    field=f"{prefix}_RATE_PER_SECOND",
                )

    @classmethod
    def from_env(cls) -> Settings:
        """Build settings from the environment; ``*_FILE`` variables read Docker secrets."""
        overrides: dict[str, str] = {}
        for name in (
            "DATABASE_URL",
            "REDIS_URL",
            "CELERY_BROKER_URL",
            "CELERY_RESULT_BACKEND",
            "AGENT_API_KEY",
            "CHANNEL_KEYS",
        ):
            secret = _read_secret_file(name, os.environ.get(f"{name}_FILE"))
            if secret is not None and not os.environ.get(name):
                overrides[name] = secret
        try:
            return cls(**overrides)  # type: ignore[arg-type]  # aliases are valid init names
        except ValueError as exc:  # pydantic's ValidationError
            raise ConfigurationError(str(exc).splitlines()[0] + ": " + _first_error(exc)) from None

    # Derived values ---------------------------------------------------------------------------

    @property
    def var_dir(self) -> Path:
        return self.home / "var"

    @property
    def export_dir(self) -> Path:
        return self.export_dir_raw if self.export_dir_raw is not None else self.var_dir / "exports"

    @property
    def log_dir(self) -> Path:
        return self.log_dir_raw if self.log_dir_raw is not None else self.home / "logs"

    @property
    def embedded(self) -> bool:
        """True when no external service is configured (SQLite database and broker)."""
        return self.database_url.startswith("sqlite")

    @cached_property
    def database_url(self) -> str:
        if self.database_url_raw is not None:
            return self.database_url_raw.get_secret_value()
        return f"sqlite:///{(self.var_dir / 'pa.db').resolve()}"

    @cached_property
    def broker_url(self) -> str:
        for value in (self.broker_url_raw, self.redis_url_raw):
            if value is not None:
                return value.get_secret_value()
        return f"sqla+sqlite:///{(self.var_dir / 'broker.db').resolve()}"

    @cached_property
    def result_backend(self) -> str:
        if self.result_backend_raw is not None:
            return self.result_backend_raw.get_secret_value()
        if self.redis_url_raw is not None:
            return self.redis_url_raw.get_secret_value()
        if self.broker_is_redis:
            return self.broker_url
        return f"db+sqlite:///{(self.var_dir / 'results.db').resolve()}"

    @cached_property
    def outbound_policy(self) -> Policy:
        """What feed fetches and channels may connect to: public addresses, and
        ``OUTBOUND_ALLOW``'s networks."""
        return Policy(parse_allow(self.outbound_allow))

    @property
    def broker_is_redis(self) -> bool:
        return self.broker_url.startswith(("redis://", "rediss://"))

    def describe(self) -> dict[str, str]:
        """What the process runs on, passwords masked: safe to print and log."""
        agent = "offline"
        if self.agent == "openai":
            agent = f"openai:{self.agent_model} at {redaction.mask_url(self.agent_base_url or '')}"
        return {
            "database": redaction.mask_url(self.database_url),
            "broker": redaction.mask_url(self.broker_url),
            "result_backend": redaction.mask_url(self.result_backend),
            "agent": agent,
            "logs": str(self.log_dir),
        }

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        """``repr``: URLs not held as secrets (AGENT_BASE_URL may hold a key) are masked."""
        for name, value in super().__repr_args__():
            yield name, redaction.mask_url(value) if name == "agent_base_url" and value else value


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        items = errors()
        if items:
            first = items[0]
            loc = ".".join(str(part) for part in first.get("loc", ()))
            return f"{loc}: {first.get('msg', '')}"
    return str(exc)
