"""The target processes of the observability tests (see __init__.py): ``Child``
runs a script in a separate Python process and reads the lines it prints;
``cli`` runs ``python -m iokernel``; ``values`` parses Prometheus text.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[3]
PY = sys.executable


class Child:
    """A Python child process running `code`, talking through lines on stdout."""

    def __init__(self, code: str, mdir: str, env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "IOKERNEL_METRICS_DIR": mdir, "PYTHONUNBUFFERED": "1"}
        full_env.pop("IOKERNEL_ADMIN", None)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [PY, "-c", textwrap.dedent(code)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
            cwd=ROOT,
        )
        self.pid = self.proc.pid
        self.lines: list[str] = []

    def expect(self, prefix: str, timeout: float = 20.0) -> str:
        """The rest of the next stdout line starting with `prefix`."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        result: list[str] = []

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line)
                if line.startswith(prefix):
                    result.append(line[len(prefix):].strip())
                    return

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(max(0.0, deadline - time.monotonic()))
        if not result:
            self.kill()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            pytest.fail(f"child never printed {prefix!r}; stdout={self.lines!r} stderr={err}")
        return result[0]

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(10)

    def stderr(self) -> str:
        self.kill()
        return self.proc.stderr.read() if self.proc.stderr else ""


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "iokernel", *args], capture_output=True, text=True, timeout=timeout,
        cwd=ROOT, env={**os.environ, **(env or {})},
    )


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out
