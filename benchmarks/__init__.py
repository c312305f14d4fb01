"""The benchmark: ``uv run python -m benchmarks`` (see benchmarks/README.md).

One module a concern: ``cli`` (options, main), ``single_window`` and ``backfill`` (the two
benchmarks), ``contenders`` (what is measured), ``sandbox`` (the API they all download from),
``memory`` (peak RSS of a process tree), ``environment`` (a measured process's variables and
DAGSTER_HOME), ``files`` (what runs leave on disk), ``report`` (medians, ratios, markdown),
``machine`` and ``settings``. ``duckdb_floor.py`` and ``seed_rest_api.py`` are contenders run as
scripts.
"""
