"""Loading a bench/ script as a module for the tests that check the
benchmarks themselves (bench/ is not a package; its scripts import each
other by name, so bench/ goes on sys.path first, as running one does)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


def load_bench(name: str, file: str) -> Any:
    """bench/`file` as the module `name`."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
