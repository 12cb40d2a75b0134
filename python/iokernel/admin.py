"""The admin endpoint: ask a running process what it is doing, even when its
Python code is stuck. Served by the kernel thread, which never needs the GIL.

    iokernel.admin.serve()                      # unix:<metrics dir>/<pid>.sock (mode 0600)
    iokernel.admin.serve("tcp:127.0.0.1:9901")  # loopback TCP

Endpoints: ``/`` (dashboard), ``/status``, ``/inflight``, ``/metrics``,
``/stacks``. It starts by itself with the first client unless
``IOKERNEL_ADMIN=off``; ``IOKERNEL_ADMIN=unix:/path`` or ``tcp:host:port``
picks the address. ``python -m iokernel stacks PID`` reads ``/stacks``.

Stacks are taken by Python's ``faulthandler``, registered here on a real-time
signal (``IOKERNEL_STACKS_SIGNAL``, default SIGRTMIN+7) that the kernel raises
on its own thread; see docs/architecture.md.
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import ipaddress
import logging
import os
import signal
import threading

from . import _native

__all__ = ["address", "serve"]

_log = logging.getLogger("iokernel")
_lock = threading.Lock()
_autostarted_pid: int | None = None


def _default() -> str:
    return f"unix:{os.path.join(_native.metrics_dir(), f'{os.getpid()}.sock')}"


def _parse(address: str, allow_remote: bool) -> tuple[str, str, int]:
    kind, _, rest = address.partition(":")
    if kind == "unix" and rest:
        return "unix", rest, 0
    if kind == "tcp" and rest:
        host, _, port = rest.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        try:
            port_n = int(port)
        except ValueError:
            raise ValueError(f"admin address {address!r}: port must be a number") from None
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback and not allow_remote:
            raise ValueError(
                f"admin address {address!r} is not a loopback address; the endpoint shows "
                "stacks and in-flight requests, so pass allow_remote=True if you mean it"
            )
        return "tcp", host, port_n
    raise ValueError(f"admin address {address!r}: use unix:/path/to.sock or tcp:127.0.0.1:PORT")


def _stacks_signal() -> int:
    env = os.environ.get("IOKERNEL_STACKS_SIGNAL")
    return int(env) if env else int(signal.SIGRTMIN) + 7


def serve(address: str | None = None, *, allow_remote: bool = False) -> str:
    """Serve the admin endpoint; returns the bound address ("unix:..." or
    "tcp:host:port"). One endpoint per process: later calls return it."""
    with _lock:
        current = _native.admin_address()
        if current is not None:
            return current
        kind, target, port = _parse(address or os.environ.get("IOKERNEL_ADMIN") or _default(),
                                    allow_remote)
        fd: int | None = None
        sig = _stacks_signal()
        try:
            fd = os.memfd_create("iokernel-stacks", os.MFD_CLOEXEC)
            faulthandler.register(sig, file=fd, all_threads=True, chain=False)
        except (AttributeError, OSError, RuntimeError, ValueError) as e:
            _log.warning("iokernel: stack dumps disabled: %s", e)
            fd = None
        bound = _native.admin_serve(kind, target, port, fd, sig if fd is not None else None)
        pid = os.getpid()
        leftovers = [os.path.join(_native.metrics_dir(), f"{pid}.admin")]
        if kind == "unix":
            leftovers.append(target)

        def _cleanup() -> None:
            if os.getpid() == pid:
                for path in leftovers:
                    with contextlib.suppress(OSError):
                        os.unlink(path)

        atexit.register(_cleanup)
        return bound


def address() -> str | None:
    """Where this process serves its admin endpoint, if it does."""
    return _native.admin_address()


def _autostart() -> None:
    """Called when a client is created: serve unless IOKERNEL_ADMIN=off.
    Never raises: a client must work even if the endpoint cannot start."""
    global _autostarted_pid
    if _autostarted_pid == os.getpid():
        return
    _autostarted_pid = os.getpid()
    if os.environ.get("IOKERNEL_ADMIN", "").lower() in ("off", "0", "no", "false"):
        return
    try:
        serve()
    except (OSError, ValueError) as e:
        _log.warning("iokernel: admin endpoint not started: %s", e)
