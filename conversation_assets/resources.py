"""The Dagster resource that holds the Dixa token and settings."""

import os

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from conversation_assets.settings import DixaSettings


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

    def settings(self) -> DixaSettings:
        """Validated settings: raises SettingsError naming the variable that is wrong."""
        env = os.environ
        return DixaSettings.from_values(
            api_token=self.api_token,
            base_url=self.base_url or env.get("DIXA_BASE_URL"),
            start_date=env.get("DIXA_START_DATE"),
            batch_size_days=first_set(self.batch_size_days, env.get("DIXA_BATCH_SIZE_DAYS")),
            max_retries=first_set(self.max_retries, env.get("DIXA_MAX_RETRIES")),
            retry_backoff_seconds=first_set(
                self.retry_backoff_seconds, env.get("DIXA_RETRY_BACKOFF_SECONDS")
            ),
            request_timeout_seconds=first_set(
                self.request_timeout_seconds, env.get("DIXA_REQUEST_TIMEOUT_SECONDS")
            ),
        )


def first_set(*values: object) -> object:
    """The first value that is not None."""
    return next((value for value in values if value is not None), None)


def dixa_resource_from_env() -> DixaResource:
    """The resource as the definitions wire it: the token from DIXA_API_TOKEN."""
    return DixaResource(api_token=EnvVar("DIXA_API_TOKEN"))
