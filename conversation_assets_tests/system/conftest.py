"""The ``deployment`` fixture: sandbox, webserver and daemon on fresh state, for system tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from conversation_assets_tests.support.sandboxed_deployment import (
    SandboxedDeployment,
    Setup,
    running_deployment,
)


@pytest.fixture
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SandboxedDeployment]:
    """A running deployment of ``Setup()`` (or of the test's ``Setup``, given indirectly); all
    its processes stopped at the end, even on failure."""
    with running_deployment(getattr(request, "param", Setup()), tmp_path) as deployment:
        yield deployment
