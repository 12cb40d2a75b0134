"""Fixtures of the Sentinel tests: ``group``, a fresh primary + replica +
three sentinels per test (tests/servers/sentinel_group.py), so a failover
in one test never meets another's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import SentinelGroup


@pytest.fixture
def group() -> Iterator[SentinelGroup]:
    with SentinelGroup() as g:
        yield g
