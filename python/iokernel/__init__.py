"""iokernel: network I/O for Python in one native thread that never holds the GIL.

Protocols live in submodules (``from iokernel import redis``). Errors are
shared by all of them and form one shallow tree rooted at ``iokernel.Error``.
"""

from __future__ import annotations

import atexit

from . import _native
from ._configure import configure
from ._errors import (
    ConnectionError,
    Error,
    InterfaceError,
    OverloadedError,
    ProtocolError,
    ResponseTooLargeError,
    TimeoutError,
    TLSError,
)

__version__: str = _native.__version__

__all__ = [
    "ConnectionError",
    "Error",
    "InterfaceError",
    "OverloadedError",
    "ProtocolError",
    "ResponseTooLargeError",
    "TLSError",
    "TimeoutError",
    "__version__",
    "configure",
    "shutdown",
]


def shutdown(wait: float = 1.0) -> bool:
    """Stop the kernel thread (it restarts on next use). Runs at exit."""
    return _native.shutdown(wait)


atexit.register(shutdown, 1.0)
