"""The exports API as the seed describes it, in one place.

The project's streaming resource uses the seed's endpoint, auth, primary key, write disposition
and retry codes. dlt's ``rest_api`` parses a whole answer into memory (several times the body's
size), which a 31-day window of a busy account cannot afford, so the project streams instead
(see ``client.py``).
"""

from __future__ import annotations

ENDPOINT_PATH = "conversation_export"
RETRY_STATUS_CODES: tuple[int, ...] = (429, 500, 502, 503, 504)
WRITE_DISPOSITION = "merge"
