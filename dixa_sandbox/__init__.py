"""A local stand-in for Dixa's exports API, for tests, demos and benchmarks.

    with SandboxServer(token="t", data=SandboxData(per_day=100), now=now_ms) as server:
        server.inject(Fault.status_code(429, retry_after=1))
        ...  # GET f"{server.url}conversation_export?updated_after=...&updated_before=..."
        ...  # GET f"{server.url}message_export?created_after=...&created_before=..."

The endpoints are data (``endpoints.py``: path, filter pair, cursor); one code path serves both.

For an exact script of what the API holds (duplicates, updates between two requests), pass
``data=ScriptedData(records, updates)`` and ``record_served=True`` (see ``scripted.py``).

Run it on its own with ``python -m dixa_sandbox --port 8765 --token TOKEN``.
"""

from dixa_sandbox.data import SandboxData
from dixa_sandbox.endpoints import CONVERSATIONS, ENDPOINTS, MESSAGES, Endpoint
from dixa_sandbox.faults import Fault
from dixa_sandbox.scripted import ScriptedData, Update
from dixa_sandbox.server import Latency, RequestRecord, SandboxServer

__all__ = [
    "CONVERSATIONS",
    "ENDPOINTS",
    "MESSAGES",
    "Endpoint",
    "Fault",
    "Latency",
    "RequestRecord",
    "SandboxData",
    "SandboxServer",
    "ScriptedData",
    "Update",
]
