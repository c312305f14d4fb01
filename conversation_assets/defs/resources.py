"""The Dagster resource that holds the Dixa token (and optional per-deployment overrides)."""

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from conversation_assets.config import Config


class DixaResource(ConfigurableResource):
    """The token, and optional overrides of the API settings of :class:`Config`.

    Each field has the name of a :class:`Config` field; unset fields fall back to the
    environment, then to the defaults, so a setting has the same effect under Dagster as
    without it. Wire the token as ``EnvVar("DIXA_API_TOKEN")``: the UI then shows the
    variable's name, never its value.
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

    def config(self, require_token: bool = True) -> Config:
        """The validated configuration: raises ConfigError naming the variable that is wrong."""
        overrides = {name: getattr(self, name) for name in type(self).model_fields}
        if not require_token:
            overrides["api_token"] = overrides["api_token"] or None
        return Config.from_env(require_token=require_token, **overrides)


def dixa_resource_from_env() -> DixaResource:
    """The resource as the definitions wire it: the token from DIXA_API_TOKEN."""
    return DixaResource(api_token=EnvVar("DIXA_API_TOKEN"))
