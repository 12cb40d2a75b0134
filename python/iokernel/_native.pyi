# Stubs for the compiled module iokernel._native (src/python/). Checked
# against the binary by tests/unit/test_packaging.py.
from typing import Any, Callable

__version__: str

def shutdown(wait: float = 1.0) -> bool: ...
def generation() -> int: ...

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
    def submit_lease(self, completer: Completer, fut: Any) -> Any: ...
    def release(self, conn: int) -> None: ...
    def stats(self) -> dict[str, int]: ...
