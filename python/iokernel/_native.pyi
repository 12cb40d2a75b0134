# Stubs for the compiled module iokernel._native (src/python/). Checked
# against the binary by tests/unit/test_packaging.py.
from collections.abc import Callable
from typing import Any

__version__: str

def shutdown(wait: float = 1.0) -> bool: ...
def generation() -> int: ...

class Call:
    """An awaitable of a submitted request; also drives like a coroutine."""
    def __await__(self) -> Any: ...
    def send(self, value: Any) -> Any: ...
    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any: ...
    def close(self) -> None: ...

class Completer:
    generation: int
    def __init__(self) -> None: ...
    def fileno(self) -> int: ...
    def pending(self) -> int: ...
    def drain(self) -> int: ...

class RedisService:
    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 5.0,
        max_in_flight: int = 4096,
        max_queued: int = 16384,
        client_name: str | None = None,
        idle_ping: float | None = 5.0,
    ) -> None: ...
    @property
    def name(self) -> str: ...
    def call(
        self,
        args: tuple[Any, ...],
        decode: bool = False,
        timeout: float | None = None,
        conn: int | None = None,
    ) -> Any: ...
    def call_many(
        self,
        cmds: list[tuple[Any, ...]],
        decode: bool = False,
        timeout: float | None = None,
        conn: int | None = None,
    ) -> list[Any]: ...
    def submit(
        self,
        completer: Completer,
        fut: Any,
        args: tuple[Any, ...],
        post: Callable[[Any], Any] | None = None,
        decode: bool = False,
        timeout: float | None = None,
        conn: int | None = None,
    ) -> Any: ...
    def acall(
        self,
        args: tuple[Any, ...],
        post: Callable[[Any], Any] | None = None,
        decode: bool = False,
        timeout: float | None = None,
        conn: int | None = None,
    ) -> Any: ...
    def submit_many(
        self,
        completer: Completer,
        fut: Any,
        cmds: list[tuple[Any, ...]],
        post: Callable[[Any], Any] | None = None,
        decode: bool = False,
        timeout: float | None = None,
        conn: int | None = None,
    ) -> Any: ...
    def lease(self, timeout: float | None = None) -> int: ...
    def submit_lease(self, completer: Completer, fut: Any, timeout: float | None) -> Any: ...
    def release(self, conn: int) -> None: ...
    def stats(self) -> dict[str, int]: ...

class CounterSeries:
    def inc(self, amount: float = 1.0) -> None: ...
    def get(self) -> float: ...

class GaugeSeries:
    def inc(self, amount: float = 1.0) -> None: ...
    def dec(self, amount: float = 1.0) -> None: ...
    def set(self, value: float) -> None: ...
    def get(self) -> float: ...

class HistogramSeries:
    def observe(self, value: float) -> None: ...
    def sum(self) -> float: ...
    def count(self) -> int: ...

def metric_series(
    kind: str,
    name: str,
    help: str,
    labels: list[tuple[str, str]],
    buckets: list[float] | None = None,
) -> Any: ...
def metrics_path() -> str | None: ...
def metrics_file_error() -> str | None: ...
def metrics_cleanup() -> None: ...
def render_metrics(path: str | None = None) -> str: ...
def read_metrics(path: str | None = None) -> tuple[int, int, list[dict[str, Any]]]: ...
def admin_serve(
    kind: str,
    target: str,
    port: int = 0,
    stacks_fd: int | None = None,
    stacks_signal: int | None = None,
) -> str: ...
def admin_address() -> str | None: ...
def metrics_dir() -> str: ...

class Record:
    def __len__(self) -> int: ...
    def __getitem__(self, key: int | str | slice) -> Any: ...
    def __contains__(self, name: object) -> bool: ...
    def __iter__(self) -> Any: ...
    def __hash__(self) -> int: ...
    def get(self, key: str, default: Any = None) -> Any: ...
    def keys(self) -> Any: ...
    def values(self) -> Any: ...
    def items(self) -> Any: ...

class PgService:
    def __init__(
        self,
        dsn: str,
        *,
        connections: int = 2,
        max_in_flight: int = 1024,
        max_queued: int = 16384,
        statement_cache_size: int = 256,
        connect_timeout: float | None = None,
        idle_ping: float | None = 5.0,
        max_dedicated: int = 16,
    ) -> None: ...
    @property
    def name(self) -> str: ...
    def query(
        self,
        shape: int,
        sql: str,
        args: tuple[Any, ...],
        column: int = 0,
        timeout: float | None = None,
        conn: int | None = None,
        simple: bool = False,
    ) -> Any: ...
    def submit(
        self,
        completer: Completer,
        fut: Any,
        shape: int,
        sql: str,
        args: tuple[Any, ...],
        column: int = 0,
        timeout: float | None = None,
        conn: int | None = None,
        simple: bool = False,
    ) -> Any: ...
    def describe(
        self, sql: str, timeout: float | None = None, conn: int | None = None
    ) -> list[int]: ...
    def submit_describe(
        self,
        completer: Completer,
        fut: Any,
        sql: str,
        timeout: float | None = None,
        conn: int | None = None,
    ) -> Any: ...
    def query_many(
        self,
        sql: str,
        rows: Any,
        timeout: float | None = None,
        conn: int | None = None,
        types: list[int] | None = None,
    ) -> Any: ...
    def submit_many(
        self,
        completer: Completer,
        fut: Any,
        sql: str,
        rows: Any,
        timeout: float | None = None,
        conn: int | None = None,
        types: list[int] | None = None,
    ) -> Any: ...
    def lease(self, timeout: float | None = None) -> int: ...
    def submit_lease(self, completer: Completer, fut: Any, timeout: float | None) -> Any: ...
    def release(self, conn: int) -> None: ...
    def stats(self) -> dict[str, int]: ...
