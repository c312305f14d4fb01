"""The Dagster resource that holds the Dixa token and settings."""

import os

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from conversation_assets.config import Config

#: Resource field -> the environment variable it overrides.
FIELD_VARIABLES = {
    "api_token": "DIXA_API_TOKEN",
    "base_url": "DIXA_BASE_URL",
    "batch_size_days": "DIXA_BATCH_SIZE_DAYS",
    "max_retries": "DIXA_MAX_RETRIES",
    "retry_backoff_seconds": "DIXA_RETRY_BACKOFF_SECONDS",
    "request_timeout_seconds": "DIXA_REQUEST_TIMEOUT_SECONDS",
    "extract_format": "DIXA_EXTRACT_FORMAT",
}


class DixaResource(ConfigurableResource):
    """Dixa exports API settings. Unset fields fall back to the DIXA_* variables, then defaults.

    Wire the token as ``EnvVar("DIXA_API_TOKEN")``: the UI then shows the variable's name,
    never its value.
    """

    api_token: str = Field(description="Dixa API token; wire it as EnvVar('DIXA_API_TOKEN').")
    base_url: str | None = Field(default=None, description="DIXA_BASE_URL.")
    batch_size_days: int | None = Field(default=None, description="DIXA_BATCH_SIZE_DAYS (1-31).")
    max_retries: int | None = Field(default=None, description="DIXA_MAX_RETRIES.")
    retry_backoff_seconds: float | None = Field(
        default=None, description="DIXA_RETRY_BACKOFF_SECONDS."
    )
    request_timeout_seconds: float | None = Field(
        default=None, description="DIXA_REQUEST_TIMEOUT_SECONDS."
    )
    extract_format: str | None = Field(
        default=None, description="DIXA_EXTRACT_FORMAT: json (default) or arrow."
    )

    def settings(self) -> Config:
        """Validated settings: raises ConfigError naming the variable that is wrong.

        The resource's fields override the environment, and the result is read by the same
        :meth:`Config.from_env` as every other entry point, so each DIXA_* setting has
        the same effect under Dagster as without it.
        """
        overrides = {
            variable: str(value)
            for name, variable in FIELD_VARIABLES.items()
            if (value := getattr(self, name)) is not None
        }
        return Config.from_env({**os.environ, **overrides})


def dixa_resource_from_env() -> DixaResource:
    """The resource as the definitions wire it: the token from DIXA_API_TOKEN."""
    return DixaResource(api_token=EnvVar("DIXA_API_TOKEN"))
