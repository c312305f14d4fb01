"""A local stand-in for Dixa's exports API, for tests, demos and benchmarks.

    with SandboxServer(token="t", data=SandboxData(per_day=100), now=now_ms) as server:
        server.inject(Fault.status_code(429, retry_after=1))
        ...  # GET f"{server.url}conversation_export?updated_after=...&updated_before=..."

For an exact script of what the API holds (duplicates, updates between two requests), pass
``data=ScriptedData(records, updates)`` and ``record_served=True`` (see ``scripted.py``).

Run it on its own with ``python -m dixa_sandbox --port 8765 --token TOKEN``.
"""

from dixa_sandbox.data import SandboxData
from dixa_sandbox.faults import Fault
from dixa_sandbox.scripted import ScriptedData, Update
from dixa_sandbox.server import Latency, RequestRecord, SandboxServer

__all__ = [
    "Fault",
    "Latency",
    "RequestRecord",
    "SandboxData",
    "SandboxServer",
    "ScriptedData",
    "Update",
]
