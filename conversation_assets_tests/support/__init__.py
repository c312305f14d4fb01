"""What the tests (and the benchmarks) share, one concern a module.

- ``processes``: start and stop process groups, free ports, waits that watch the processes.
- ``dagster_deployment``: a fresh ``DAGSTER_HOME``; the webserver, the daemon or ``dagster dev``.
- ``graphql``: the webserver's GraphQL operations, as the UI performs them.
- ``sandboxed_deployment``: the API sandbox as a process, and a whole deployment against it.
- ``materialize``: one partition by the CLI, or in-process.
- ``environment``: the project's settings for a child process, named in one place.
- ``helpers``: month windows, the pipeline on a window, DuckDB queries.
- ``oracle``, ``oracle_scenarios``: the correctness oracle and its generated scenarios.
- ``messages``, ``message_scenarios``: message windows loaded and judged by the oracle, and the
  oracle's generated message histories (issue 12); ``hypothesis_profiles``: the oracle tests'
  Hypothesis profiles (``HYPOTHESIS_PROFILE``).
"""
