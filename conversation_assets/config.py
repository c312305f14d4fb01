"""The DIXA_* settings: read from the environment once, validated before any request.

Every bad value raises :class:`ConfigError` with one message that names the variable and says
what is allowed. The token is held in :class:`Secret`, whose ``repr``/``str`` never show it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar
from urllib.parse import urlsplit

Number = TypeVar("Number", int, float)

DEFAULT_BASE_URL = "https://exports.dixa.io/v1/"
DEFAULT_START_DATE = "2024-01-01"
DEFAULT_START = date(2024, 1, 1)
DEFAULT_BATCH_SIZE_DAYS = 31
MAX_BATCH_SIZE_DAYS = 31
DEFAULT_MAX_RETRIES = 3
DEFAULT_RETRY_BACKOFF_SECONDS = 60.0
DEFAULT_REQUEST_TIMEOUT_SECONDS = 300.0
DEFAULT_DESTINATION_WAIT_SECONDS = 600.0
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: Load paths, the default first: ``json`` hands records to dlt's normalizer (exact on every table,
#: one transaction a partition); ``arrow`` is the faster path with the limits the README lists.
EXTRACT_FORMATS = ("json", "arrow")


class ConfigError(ValueError):
    """A setting has a value the project cannot use; the message names the variable."""


class Secret:
    """A string that never shows itself in logs, reprs or exception text."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: only for the Authorization header."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


@dataclass(frozen=True)
class Config:
    """Validated settings for one run; build with :meth:`from_env` or :meth:`from_values`."""

    api_token: Secret = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    start_date: date = DEFAULT_START
    batch_size_days: int = DEFAULT_BATCH_SIZE_DAYS
    max_retries: int = DEFAULT_MAX_RETRIES
    retry_backoff_seconds: float = DEFAULT_RETRY_BACKOFF_SECONDS
    request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS
    extract_format: str = EXTRACT_FORMATS[0]

    @classmethod
    def from_values(
        cls,
        *,
        api_token: str | None,
        base_url: str | None = None,
        start_date: str | None = None,
        batch_size_days: str | int | None = None,
        max_retries: str | int | None = None,
        retry_backoff_seconds: str | float | None = None,
        request_timeout_seconds: str | float | None = None,
        extract_format: str | None = None,
        require_token: bool = True,
    ) -> Config:
        """Validate raw values (strings from the environment, or typed config)."""
        if require_token and not (api_token or "").strip():
            raise ConfigError(
                "DIXA_API_TOKEN is not set: export the Dixa API token "
                "(Settings > Integrations > API tokens) before running."
            )
        return cls(
            api_token=Secret((api_token or "").strip()),
            base_url=parse_base_url(base_url or DEFAULT_BASE_URL),
            start_date=parse_start_date(start_date or DEFAULT_START_DATE),
            batch_size_days=parse_int(
                "DIXA_BATCH_SIZE_DAYS",
                batch_size_days,
                DEFAULT_BATCH_SIZE_DAYS,
                1,
                MAX_BATCH_SIZE_DAYS,
            ),
            max_retries=parse_int("DIXA_MAX_RETRIES", max_retries, DEFAULT_MAX_RETRIES, 0, 20),
            retry_backoff_seconds=parse_float(
                "DIXA_RETRY_BACKOFF_SECONDS",
                retry_backoff_seconds,
                DEFAULT_RETRY_BACKOFF_SECONDS,
                0.0,
                3600.0,
            ),
            request_timeout_seconds=parse_float(
                "DIXA_REQUEST_TIMEOUT_SECONDS",
                request_timeout_seconds,
                DEFAULT_REQUEST_TIMEOUT_SECONDS,
                1.0,
                3600.0,
            ),
            extract_format=parse_choice("DIXA_EXTRACT_FORMAT", extract_format, EXTRACT_FORMATS),
        )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, require_token: bool = True
    ) -> Config:
        """Read and validate the DIXA_* variables."""
        env = os.environ if environ is None else environ
        return cls.from_values(
            api_token=env.get("DIXA_API_TOKEN"),
            base_url=env.get("DIXA_BASE_URL"),
            start_date=env.get("DIXA_START_DATE"),
            batch_size_days=env.get("DIXA_BATCH_SIZE_DAYS"),
            max_retries=env.get("DIXA_MAX_RETRIES"),
            retry_backoff_seconds=env.get("DIXA_RETRY_BACKOFF_SECONDS"),
            request_timeout_seconds=env.get("DIXA_REQUEST_TIMEOUT_SECONDS"),
            extract_format=env.get("DIXA_EXTRACT_FORMAT"),
            require_token=require_token,
        )


def parse_base_url(value: str) -> str:
    """An http(s) URL ending in '/'; plain http only for localhost (the token must not leak)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"DIXA_BASE_URL must be an http(s) URL such as {DEFAULT_BASE_URL!r}, got {value!r}."
        )
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise ConfigError(
            f"DIXA_BASE_URL uses plain http for {parts.hostname!r}: only https is allowed, "
            "except for localhost/127.0.0.1 (the token would travel unencrypted)."
        )
    if parts.username or parts.password or parts.query:
        raise ConfigError(
            "DIXA_BASE_URL must not contain credentials or a query string; "
            "the token goes in DIXA_API_TOKEN."
        )
    return value.strip().rstrip("/") + "/"


def parse_start_date(value: str) -> date:
    """A calendar date written YYYY-MM-DD."""
    text = value.strip()
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"DIXA_START_DATE must be a date written YYYY-MM-DD (e.g. 2024-01-01), got {value!r}."
        ) from None


def parse_int(name: str, value: str | int | None, default: int, low: int, high: int) -> int:
    """A whole number in [low, high]; None or '' means the default."""
    return _parse_number(name, value, default, low, high, int, "a whole number")


def parse_float(
    name: str, value: str | float | None, default: float, low: float, high: float
) -> float:
    """A number of seconds in [low, high]; None or '' means the default."""
    return _parse_number(name, value, default, low, high, float, "a number of seconds")


def _parse_number(
    name: str,
    value: Any,
    default: Number,
    low: Number,
    high: Number,
    kind: Callable[[str], Number],
    what: str,
) -> Number:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        number: Number | None = kind(str(value).strip())
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise ConfigError(
            f"{name} must be {what} from {low:g} to {high:g} (default {default:g}), got {value!r}."
        )
    return number


def parse_hours(name: str, default: float) -> float:
    """A number of hours from the environment variable ``name`` (1 to 8760)."""
    return _parse_number(
        name, os.environ.get(name), default, 1.0, 8760.0, float, "a number of hours"
    )


def destination_wait_seconds(environ: Mapping[str, str] | None = None) -> float:
    """``DIXA_DESTINATION_WAIT_SECONDS``: how long a load or check waits for a DuckDB file that
    another process (a reader) holds before it fails (0 to 86400)."""
    env = os.environ if environ is None else environ
    return parse_float(
        "DIXA_DESTINATION_WAIT_SECONDS",
        env.get("DIXA_DESTINATION_WAIT_SECONDS"),
        DEFAULT_DESTINATION_WAIT_SECONDS,
        0.0,
        86400.0,
    )


def parse_choice(name: str, value: str | None, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (case-insensitive); None or '' means the first."""
    text = (value or choices[0]).strip().lower()
    if text not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}.")
    return text
