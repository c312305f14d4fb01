"""Every bad setting fails before a request, with a message that names the variable."""

from datetime import date

import pytest

from conversation_assets.config import Config, ConfigError

TOKEN = "s3cr3t-token-value"


def settings(**env: str) -> Config:
    return Config.from_env({"DIXA_API_TOKEN": TOKEN, **env})


def test_defaults() -> None:
    value = settings()
    assert value.base_url == "https://exports.dixa.io/v1/"
    assert value.batch_size_days == 31
    assert value.max_retries == 3
    assert value.retry_backoff_seconds == 60
    assert value.start_date == date(2024, 1, 1)


def test_values_are_read_and_normalised() -> None:
    value = settings(
        DIXA_BASE_URL="http://localhost:8765/v1",
        DIXA_START_DATE="2023-02-28",
        DIXA_BATCH_SIZE_DAYS="7",
        DIXA_MAX_RETRIES="0",
        DIXA_RETRY_BACKOFF_SECONDS="0.5",
    )
    assert value.base_url == "http://localhost:8765/v1/"
    assert value.start_date == date(2023, 2, 28)
    assert (value.batch_size_days, value.max_retries, value.retry_backoff_seconds) == (7, 0, 0.5)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("DIXA_START_DATE", "2024/01/01", "YYYY-MM-DD"),
        ("DIXA_START_DATE", "2024-1-1", "YYYY-MM-DD"),
        ("DIXA_START_DATE", "2024-02-30", "YYYY-MM-DD"),
        ("DIXA_BATCH_SIZE_DAYS", "0", "from 1 to 31"),
        ("DIXA_BATCH_SIZE_DAYS", "40", "from 1 to 31"),
        ("DIXA_BATCH_SIZE_DAYS", "seven", "from 1 to 31"),
        ("DIXA_MAX_RETRIES", "-1", "whole number"),
        ("DIXA_RETRY_BACKOFF_SECONDS", "soon", "seconds"),
        ("DIXA_BASE_URL", "ftp://exports.dixa.io/v1/", "http(s) URL"),
        ("DIXA_BASE_URL", "exports.dixa.io", "http(s) URL"),
        ("DIXA_BASE_URL", "http://exports.dixa.io/v1/", "only https"),
        ("DIXA_BASE_URL", "https://user:pw@exports.dixa.io/v1/", "credentials"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings(**{variable: value})
    assert variable in str(error.value)
    assert says in str(error.value)


def test_missing_token_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="DIXA_API_TOKEN"):
        Config.from_env({})


def test_token_is_not_shown_by_repr_or_str() -> None:
    value = settings()
    assert TOKEN not in repr(value)
    assert TOKEN not in str(value.api_token)
    assert value.api_token.reveal() == TOKEN


def test_destination_is_validated() -> None:
    assert settings().destination == "duckdb"
    assert settings(DESTINATION="Postgres").destination == "postgres"
    with pytest.raises(ConfigError, match="DESTINATION"):
        settings(DESTINATION="oracle")


def test_freshness_hours_are_validated() -> None:
    with pytest.raises(ConfigError, match="DIXA_FRESHNESS_FAIL_HOURS"):
        settings(DIXA_FRESHNESS_FAIL_HOURS="soon")
