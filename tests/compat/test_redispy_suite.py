"""redis-py's own tests, with their clients swapped for iokernel's (issue 15).

redis-py's source distribution from PyPI carries its test suite. At set-up
this downloads the sdist of the redis-py version installed here (pinned in
requirements-dev.txt) into target/redis-py-compat/ (a cache, never
committed), and runs its command, pipeline, asyncio and encoding test
modules in a child pytest against our real redis-server, with
``iok_redispy_plugin`` swapping in ``iokernel.redis`` clients and exception
names. Tests that cannot apply are skipped with their reason (redis-py's own
server-version skips, cluster/module/replica markers deselected here, and
``compat_na.NOT_APPLICABLE``). The test prints the pass rate over the
applicable tests and the failures by kind, and asserts the rate has not
fallen below ``FLOOR`` (the goal is 95 %).
"""

from __future__ import annotations

import collections
import importlib.metadata
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.servers import RedisServer

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "target" / "redis-py-compat"
HERE = Path(__file__).resolve().parent

MODULES = [
    "tests/test_commands.py",
    "tests/test_pipeline.py",
    "tests/test_encoding.py",
    "tests/test_asyncio/test_commands.py",
    "tests/test_asyncio/test_pipeline.py",
]
#: Deselected: they need a cluster, Redis Stack modules or a replica.
MARKERS = "not onlycluster and not redismod and not replica"
#: The pass rate this run must keep (raised as the gap closes; goal 0.95).
FLOOR = 0.95
GOAL = 0.95

pytestmark = pytest.mark.timeout(2400)


def redis_py_sources() -> Path:
    """The unpacked sdist of the installed redis-py version (downloaded once)."""
    version = importlib.metadata.version("redis")
    src = CACHE / f"redis-{version}"
    if (src / "tests" / "conftest.py").exists():
        return src
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"redis-{version}.tar.gz"
    if not archive.exists():
        subprocess.run(
            # --no-binary redis, not :all: (which also builds redis-py's build
            # backend and its dependencies from source: over 10 minutes on a
            # loaded machine, against under one)
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "redis",
             f"redis=={version}", "-d", str(CACHE)],
            check=True, capture_output=True, timeout=600,
        )
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return src


def outcomes(junit: Path) -> tuple[collections.Counter[str], list[tuple[str, str]]]:
    counts: collections.Counter[str] = collections.Counter()
    failed: list[tuple[str, str]] = []
    for case in ET.parse(junit).iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        status = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                status = "failed"
                failed.append((name, (child.get("message") or "").splitlines()[0][:160]))
                break
            if child.tag == "skipped":
                status = "skipped"
        counts[status] += 1
    return counts, failed


def test_redispy_suite_pass_rate(redis_server: RedisServer, tmp_path: Path) -> None:
    src = redis_py_sources()
    junit = tmp_path / "junit.xml"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *MODULES, "-p", "iok_redispy_plugin",
         f"--redis-url={redis_server.url()}", "-m", MARKERS, "-q", "-p", "no:cacheprovider",
         "--timeout=60", "-o", "addopts=", f"--junitxml={junit}"],
        cwd=src, env=env, capture_output=True, text=True, timeout=2300, check=False,
    )
    assert junit.exists(), f"redis-py's tests did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    counts, failed = outcomes(junit)
    applicable = counts["passed"] + counts["failed"]
    rate = counts["passed"] / applicable if applicable else 0.0
    kinds = collections.Counter(msg.split(":")[0][:60] for _, msg in failed)
    print(f"\nredis-py {src.name} suite with iokernel clients: {counts['passed']} of "
          f"{applicable} applicable tests pass ({rate:.1%}); {counts['skipped']} skipped "
          f"(server version, not applicable); goal {GOAL:.0%}")
    for kind, n in kinds.most_common(15):
        print(f"  {n:4d}  {kind}")
    assert applicable > 500, f"too few tests ran ({counts}): {proc.stdout[-2000:]}"
    assert rate >= FLOOR, f"pass rate {rate:.1%} fell below the floor {FLOOR:.0%}"
