"""Returning memory to the operating system between dlt's steps."""

from __future__ import annotations

import ctypes
import ctypes.util

import pyarrow as pa


def release_unused_memory() -> None:
    """Hand back what the extract freed (Arrow's pool, the C heap) before the load starts.

    Without it the process keeps the extract's peak as resident memory and the destination's
    own working memory (DuckDB's merge) comes on top of it. No-op where libc has no malloc_trim.
    """
    pa.default_memory_pool().release_unused()
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        trim = getattr(ctypes.CDLL(libc_name), "malloc_trim", None)
        if trim is not None:
            trim(0)
