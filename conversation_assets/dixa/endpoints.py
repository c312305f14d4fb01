"""The exports API as the seed describes it, in one place.

``seed_rest_api_config`` is the seed's dlt REST API configuration, kept as written: the benchmark
runs it as the naive baseline, and the project's streaming resource uses the same endpoint, auth,
primary key, write disposition and retry codes. dlt's ``rest_api`` parses a whole answer into
memory (several times the body's size), which a 31-day window of a busy account cannot afford, so
the project streams instead (see ``client.py``).
"""

from __future__ import annotations

from typing import Any

from conversation_assets.dixa.schema import PRIMARY_KEY, TABLE_NAME

ENDPOINT_PATH = "conversation_export"
RETRY_STATUS_CODES: tuple[int, ...] = (429, 500, 502, 503, 504)
WRITE_DISPOSITION = "merge"


def seed_rest_api_config(base_url: str, api_token: str) -> dict[str, Any]:
    """The seed's ``rest_api_source`` configuration (``data_selector`` as the seed has it)."""
    return {
        "client": {
            "base_url": base_url,
            "auth": {"type": "bearer", "token": api_token},
        },
        "resource_defaults": {"primary_key": PRIMARY_KEY, "write_disposition": WRITE_DISPOSITION},
        "resources": [
            {
                "name": TABLE_NAME,
                "endpoint": {
                    "path": f"/{ENDPOINT_PATH}",
                    "data_selector": "data",
                    "paginator": {"type": "single_page"},
                },
            }
        ],
    }
