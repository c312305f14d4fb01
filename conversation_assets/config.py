"""The one configuration: every setting of the project, typed, validated once, documented here.

Each field of :class:`Config` is declared with :func:`setting`: the environment variable that
sets it, its default as written in the environment, what it means (the README's table is
generated from these, see :func:`markdown_table`), and the parser that validates it. Every bad
value raises :class:`ConfigError` with one message that names the variable and says what is
allowed, before any request. The token is held in :class:`Secret`, whose ``repr``/``str`` never
show it.

Adding a setting is one edit here: a field with its ``setting(...)``. The source, the pipeline
and the Dagster layer receive the whole object.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_BASE_URL = "https://exports.dixa.io/v1/"
MAX_BATCH_SIZE_DAYS = 31
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: Load paths, the default first: ``json`` hands records to dlt's normalizer (exact on every table,
#: one transaction a partition); ``arrow`` is the faster path with the limits the README lists.
EXTRACT_FORMATS = ("json", "arrow")
DESTINATIONS = ("duckdb", "postgres")


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

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


Parser = Callable[["Setting", str], Any]


@dataclass(frozen=True)
class Setting:
    """How one field of :class:`Config` is set: variable, default, meaning, parser."""

    variable: str
    default: str
    meaning: str
    parse: Parser
    #: What the README's table shows as the default ("" = the default itself, in backticks).
    shown_default: str = ""

    def read(self, raw: Any) -> Any:
        """The validated value of ``raw``; None or blank means the default."""
        text = "" if raw is None else str(raw).strip()
        return self.parse(self, text or self.default)


def setting(
    variable: str, default: str, meaning: str, parse: Parser, shown_default: str = ""
) -> Any:
    """Declare a :class:`Config` field set by ``variable`` (see the module's docstring)."""
    return field(metadata={"setting": Setting(variable, default, meaning, parse, shown_default)})


# --- parsers: each turns the text of a variable (or its default) into a value, or says why not


def secret(item: Setting, text: str) -> Secret:
    return Secret(text)


def https_url(item: Setting, text: str) -> str:
    """An http(s) URL ending in '/'; plain http only for localhost (the token must not leak)."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{item.variable} must be an http(s) URL such as {DEFAULT_BASE_URL!r}, got {text!r}."
        )
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise ConfigError(
            f"{item.variable} uses plain http for {parts.hostname!r}: only https is allowed, "
            "except for localhost/127.0.0.1 (the token would travel unencrypted)."
        )
    if parts.username or parts.password or parts.query:
        raise ConfigError(
            f"{item.variable} must not contain credentials or a query string; "
            "the token goes in DIXA_API_TOKEN."
        )
    return text.rstrip("/") + "/"


def calendar_date(item: Setting, text: str) -> date:
    """A calendar date written YYYY-MM-DD."""
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{item.variable} must be a date written YYYY-MM-DD (e.g. 2024-01-01), got {text!r}."
        ) from None


def number(kind: type, low: float, high: float, what: str) -> Parser:
    """A parser of a number of ``kind`` in [low, high]."""

    def parse(item: Setting, text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise ConfigError(
                f"{item.variable} must be {what} from {low:g} to {high:g} "
                f"(default {kind(item.default):g}), got {text!r}."
            )
        return value

    return parse


def whole_number(low: int, high: int) -> Parser:
    return number(int, low, high, "a whole number")


def seconds(low: float, high: float) -> Parser:
    return number(float, low, high, "a number of seconds")


def hours(low: float, high: float) -> Parser:
    return number(float, low, high, "a number of hours")


def choice(*choices: str) -> Parser:
    """One of ``choices``, case-insensitive."""

    def parse(item: Setting, text: str) -> str:
        if text.lower() not in choices:
            raise ConfigError(f"{item.variable} must be one of {', '.join(choices)}, got {text!r}.")
        return text.lower()

    return parse


def file_path(item: Setting, text: str) -> Path:
    return Path(text)


def cron(item: Setting, text: str) -> str:
    """A five-field cron expression (what Dagster's schedules accept)."""
    from croniter import croniter  # Dagster's own cron library

    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise ConfigError(
            f"{item.variable} must be a cron expression of five fields such as '0 1 * * *' "
            f"(minute hour day month weekday, UTC), got {text!r}."
        )
    return text


@dataclass(frozen=True)
class Config:
    """Every setting of the project, validated; build with :meth:`from_env`."""

    # The API
    api_token: Secret = setting(
        "DIXA_API_TOKEN",
        "",
        "the API token; never logged, never in a URL, metadata or an error",
        secret,
        shown_default="(required for a run)",
    )
    base_url: str = setting(
        "DIXA_BASE_URL", DEFAULT_BASE_URL, "https only; plain http only for localhost", https_url
    )
    start_date: date = setting(
        "DIXA_START_DATE",
        "2024-01-01",
        "`YYYY-MM-DD`, the first day exported; partitions start at its month",
        calendar_date,
    )
    batch_size_days: int = setting(
        "DIXA_BATCH_SIZE_DAYS",
        "31",
        "1-31: no request spans more (the API refuses more than 31 days)",
        whole_number(1, MAX_BATCH_SIZE_DAYS),
    )
    max_retries: int = setting(
        "DIXA_MAX_RETRIES",
        "3",
        "0-20 retries of 429/500/502/503/504 and connection errors",
        whole_number(0, 20),
    )
    retry_backoff_seconds: float = setting(
        "DIXA_RETRY_BACKOFF_SECONDS",
        "60",
        "0-3600: constant wait between retries; a longer `Retry-After` wins",
        seconds(0.0, 3600.0),
    )
    request_timeout_seconds: float = setting(
        "DIXA_REQUEST_TIMEOUT_SECONDS",
        "300",
        "1-3600: connect and read timeout of a request (also between body chunks)",
        seconds(1.0, 3600.0),
    )
    # Loading
    extract_format: str = setting(
        "DIXA_EXTRACT_FORMAT",
        EXTRACT_FORMATS[0],
        "`json` (dlt's normalizer: exact on every table) or `arrow` (faster, with limits; "
        "see below)",
        choice(*EXTRACT_FORMATS),
    )
    destination: str = setting(
        "DESTINATION",
        DESTINATIONS[0],
        "`duckdb` or `postgres` (its credentials: dlt's `DESTINATION__POSTGRES__CREDENTIALS`, "
        "`postgresql://user:password@host:5432/db`, or `.dlt/secrets.toml`)",
        choice(*DESTINATIONS),
    )
    duckdb_file: Path = setting(
        "DESTINATION__DUCKDB__CREDENTIALS",
        "data/conversations.duckdb",
        "dlt's own variable: the DuckDB file",
        file_path,
    )
    destination_wait_seconds: float = setting(
        "DIXA_DESTINATION_WAIT_SECONDS",
        "600",
        "0-86400: how long a load or check waits for a DuckDB file another process (a reader) "
        "holds, then fails naming it",
        seconds(0.0, 86400.0),
    )
    runs_dir: Path = setting(
        "DIXA_DLT_RUNS_DIR",
        "data/dlt_runs",
        "where each run gets its own dlt working folder (nothing goes to `~/.dlt`)",
        file_path,
    )
    progress: str = setting(
        "DIXA_PROGRESS",
        "off",
        "`log` makes dlt log its progress (rows per table) during a run",
        choice("off", "log"),
    )
    # Keeping it current (read when the definitions load)
    schedule_cron: str = setting(
        "DIXA_SCHEDULE_CRON", "0 1 * * *", "the daily schedule (UTC)", cron
    )
    late_update_days: int = setting(
        "DIXA_LATE_UPDATE_DAYS",
        "3",
        "0-27: in the first N days of a month the schedule also re-loads the previous month",
        whole_number(0, 27),
    )
    freshness_warn_hours: float = setting(
        "DIXA_FRESHNESS_WARN_HOURS",
        "26",
        "1-8760: the warn window of the asset's `FreshnessPolicy.time_window`",
        hours(1.0, 8760.0),
    )
    freshness_fail_hours: float = setting(
        "DIXA_FRESHNESS_FAIL_HOURS",
        "30",
        "1-8760: its fail window; after it the freshness sensor requests a catch-up run",
        hours(1.0, 8760.0),
    )
    freshness_sensor: str = setting(
        "DIXA_FRESHNESS_SENSOR",
        "on",
        "`off` leaves the freshness sensor stopped until it is started in the UI",
        choice("on", "off"),
    )

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        require_token: bool = True,
        **overrides: Any,
    ) -> Config:
        """Read and validate every variable; ``overrides`` (field name -> raw value) win."""
        env = os.environ if environ is None else environ
        raw = {name: env.get(item.variable) for name, item in settings().items()}
        unknown = set(overrides) - set(raw)
        if unknown:
            raise TypeError(f"Config has no field {', '.join(sorted(unknown))}")
        raw.update({name: value for name, value in overrides.items() if value is not None})
        values = {name: item.read(raw[name]) for name, item in settings().items()}
        if require_token and not values["api_token"]:
            raise ConfigError(
                "DIXA_API_TOKEN is not set: export the Dixa API token "
                "(Settings > Integrations > API tokens) before running."
            )
        return cls(**values)

    @classmethod
    def from_values(cls, *, require_token: bool = True, **values: Any) -> Config:
        """Validate raw values by field name (the rest: defaults, not the environment)."""
        return cls.from_env({}, require_token=require_token, **values)

    def replace(self, **changes: Any) -> Config:
        """A copy with fields changed (typed values, not validated again)."""
        return dataclasses.replace(self, **changes)


def settings() -> dict[str, Setting]:
    """Field name -> its :class:`Setting`, in declaration order."""
    return {item.name: item.metadata["setting"] for item in dataclasses.fields(Config)}


def markdown_table() -> str:
    """The README's configuration table, generated from :class:`Config`."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for item in settings().values():
        default = item.shown_default or f"`{item.default}`"
        lines.append(f"| `{item.variable}` | {default} | {item.meaning} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
