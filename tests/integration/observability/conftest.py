"""Fixtures of the observability tests: ``mdir`` (a private, short metrics dir)
and ``children`` (child processes killed after the test).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest

from tests.integration.observability.child import Child


@pytest.fixture
def mdir() -> Iterator[str]:
    """A private, short metrics dir (AF_UNIX paths must stay < 108 bytes)."""
    with tempfile.TemporaryDirectory(prefix="iokobs") as d:
        yield d


@pytest.fixture
def children() -> Iterator[list[Child]]:
    made: list[Child] = []
    yield made
    for c in made:
        c.kill()
