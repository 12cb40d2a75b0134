"""``python -m iokernel``: look inside a running (or stuck) iokernel process.

    python -m iokernel metrics PID     Prometheus text from PID's metrics file
    python -m iokernel stacks PID      every Python thread's stack (admin endpoint)
    python -m iokernel top PID         live view: rates, errors, latency, connections
    python -m iokernel status PID      services and connections (admin endpoint, JSON)
    python -m iokernel inflight PID    requests in flight with their age (admin endpoint)
"""

from __future__ import annotations

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
