"""HTTP for the exports API: bearer auth, logged retries, the answer streamed; no tables.

Built from the pieces dlt's own requests helper uses (dlt's ``Session``, its ``retry_if_status``
condition, tenacity), because that helper neither logs a retry nor lets the configured wait win
over a shorter ``Retry-After``. The body is never held whole in memory: records are handed to
the streaming JSON parser as they arrive (:meth:`ExportClient.fetch`), or the answer is written
to a file (:meth:`ExportClient.download`, for the Arrow path's parser), so memory does not grow
with the window. One client serves any endpoint (:mod:`conversation_assets.dixa.endpoints`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import ijson
import requests
from dlt.sources.helpers.requests.retry import retry_if_status
from dlt.sources.helpers.requests.session import Session
from tenacity import RetryCallState, Retrying, retry_any, retry_if_exception_type
from tenacity import stop_after_attempt as stop_after_attempts

from conversation_assets.config import Config
from conversation_assets.dixa.endpoints import RETRY_STATUS_CODES, Endpoint
from conversation_assets.dixa.parse.records import ChunkReader, NumberOutOfRange, iter_json_records
from conversation_assets.dixa.windows import Window

log = logging.getLogger(__name__)

RETRY_EXCEPTIONS = (requests.ConnectionError, requests.Timeout)
CHUNK_BYTES = 1 << 20

ADVICE_BY_STATUS = {
    400: "the API refused the request parameters",
    401: "the API token was rejected: check DIXA_API_TOKEN",
    403: "the API token may not read exports: check its permissions in Dixa and DIXA_API_TOKEN",
    404: "the endpoint was not found: check DIXA_BASE_URL",
    422: "the API could not process the request parameters",
    429: "the API rate limit was reached; the next run retries the window",
}


class DixaApiError(RuntimeError):
    """The exports API did not deliver a complete window; the message says what it answered."""

    def __init__(self, message: str, *, status: int | None = None, window: Window | None = None):
        super().__init__(message)
        self.status = status
        self.window = window


@dataclass
class RequestStats:
    """What one run asked of the API: shown in the asset's metadata."""

    requests: int = 0
    retries: int = 0
    windows: int = 0
    records: int = 0
    bytes: int = 0


class WaitConstantOrRetryAfter:
    """Wait the configured seconds, or longer when the answer's ``Retry-After`` says so."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, state: RetryCallState) -> float:
        return max(self.seconds, retry_after_seconds(state) or 0.0)


def retry_after_seconds(state: RetryCallState) -> float | None:
    """The ``Retry-After`` of the last answer in seconds (the HTTP-date form is ignored)."""
    outcome = state.outcome
    if outcome is None or outcome.failed:
        return None
    value = outcome.result().headers.get("Retry-After", "")
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


class ExportClient:
    """Fetches windows of records from one export endpoint."""

    def __init__(self, config: Config, endpoint: Endpoint, logger: Any = None) -> None:
        self.config = config
        self.endpoint = endpoint
        self.url = config.base_url + endpoint.path
        self.log = logger or log
        self.stats = RequestStats()
        self.session = Session(timeout=config.request_timeout_seconds, raise_for_status=False)
        self.session.headers["Authorization"] = f"Bearer {config.api_token.reveal()}"
        self.session.headers["Accept"] = "application/json"

    def fetch(self, window: Window) -> Iterator[dict[str, Any]]:
        """Yield every record the API returns for ``window``, as it streams in."""
        response = self._get_with_retries(window)
        self.stats.windows += 1
        count = 0
        reader = ChunkReader(response.iter_content(CHUNK_BYTES), on_chunk=self._count_bytes)
        try:
            for record in iter_json_records(reader):
                count += 1
                yield record
        except NumberOutOfRange as error:
            raise DixaApiError(f"Window {window}: {error}", window=window) from None
        except (requests.RequestException, ijson.JSONError, ValueError) as error:
            raise broken_answer(window, f"{count} {self.endpoint.noun}", error) from None
        finally:
            response.close()
        self.received(window, count)

    def download(self, window: Window, target: BinaryIO) -> None:
        """Write the answer for ``window`` to ``target`` as it arrives."""
        response = self._get_with_retries(window)
        self.stats.windows += 1
        written = 0
        try:
            for chunk in response.iter_content(CHUNK_BYTES):
                target.write(chunk)
                written += len(chunk)
                self._count_bytes(len(chunk))
        except requests.RequestException as error:
            raise broken_answer(window, f"{written} bytes", error) from None
        finally:
            response.close()

    def received(self, window: Window, count: int) -> None:
        """Count and log the records one window delivered."""
        self.stats.records += count
        self.log.info(f"Dixa {self.endpoint.path} window {window}: {count} {self.endpoint.noun}")

    def _count_bytes(self, size: int) -> None:
        self.stats.bytes += size

    def _get_with_retries(self, window: Window) -> requests.Response:
        retrying = Retrying(
            retry=retry_any(
                retry_if_status(RETRY_STATUS_CODES), retry_if_exception_type(RETRY_EXCEPTIONS)
            ),
            wait=WaitConstantOrRetryAfter(self.config.retry_backoff_seconds),
            stop=stop_after_attempts(self.config.max_retries + 1),
            before_sleep=lambda state: self._before_retry(state, window),
            retry_error_callback=lambda state: state.outcome.result(),  # type: ignore[union-attr]
            reraise=True,
        )
        try:
            response: requests.Response = retrying(self._send, window)
        except RETRY_EXCEPTIONS as error:
            raise DixaApiError(
                f"Could not reach the Dixa exports API for window {window} after "
                f"{self.config.max_retries + 1} attempts: {type(error).__name__}: "
                f"{redact(str(error), self.config)}",
                window=window,
            ) from None
        if response.status_code != 200:
            raise self._status_error(response, window)
        return response

    def _send(self, window: Window) -> requests.Response:
        self.stats.requests += 1
        params = self.endpoint.query_params(window)
        return self.session.get(self.url, params=params, stream=True)

    def _before_retry(self, state: RetryCallState, window: Window) -> None:
        self.stats.retries += 1
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            response = outcome.result()
            reason = f"HTTP {response.status_code}"
            response.close()
        elif outcome is not None:
            reason = type(outcome.exception()).__name__
        else:
            reason = "unknown"
        wait = state.next_action.sleep if state.next_action else 0.0
        self.log.warning(
            f"Dixa answered {reason} for window {window}; retry {state.attempt_number} of "
            f"{self.config.max_retries} in {wait:g} s"
        )

    def _status_error(self, response: requests.Response, window: Window) -> DixaApiError:
        status = response.status_code
        api_message = redact(api_message_of(response), self.config)
        advice = ADVICE_BY_STATUS.get(status, "the API answered an error")
        attempts = ""
        if status in RETRY_STATUS_CODES:
            attempts = f" after {self.config.max_retries + 1} attempts"
        response.close()
        return DixaApiError(
            f"Dixa answered HTTP {status} for window {window}{attempts}: {advice}. "
            f"The API said: {api_message!r}",
            status=status,
            window=window,
        )


def broken_answer(window: Window, received: str, error: Exception) -> DixaApiError:
    """The error for an answer that ended early or is not the expected JSON."""
    return DixaApiError(
        f"The answer for window {window} broke off after {received} "
        f"({type(error).__name__}: {error}); nothing of this window is committed. "
        "Re-run the partition to load it completely.",
        window=window,
    )


def api_message_of(response: requests.Response) -> str:
    """The API's own words: ``message`` of a JSON error body, else the start of the body."""
    try:
        text = response.content[:2000].decode("utf-8", errors="replace")
    except requests.RequestException:
        return "(no body)"
    try:
        body = requests.models.complexjson.loads(text)
    except ValueError:
        return text.strip() or "(empty body)"
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)
    return text.strip()


def redact(text: str, config: Config) -> str:
    """Remove the token from a text that came from outside (an error body, an exception)."""
    token = config.api_token.reveal()
    return text.replace(token, "********") if token else text
