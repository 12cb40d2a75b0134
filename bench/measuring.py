"""How one benchmark measurement is taken, shared by every script in bench/:

* ``Measurement``: ops, wall seconds and CPU seconds (the client process, the
  server) of one timed run; ``Clock`` takes them around the timed section;
* ``timed_threads``: one body run by many threads released at once, timed
  from the release to the last thread's end;
* ``process_tree_cpu``: a server's CPU (its processes and their children)
  from /proc;
* ``ClientProcesses``: each client measured in a worker process of its own
  (fresh per measurement if asked), so one client's leftovers never load
  another's measurement;
* ``keep_awake``: busy loops at nice 19 that keep a VM's vCPUs from halting.

harness.py builds the run (interleaving, summaries, reports, the command
line) on these.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

@dataclass
class Measurement:
    ops: int
    seconds: float
    conns_server: int | None = None  # connections of this client, seen by the server
    conns_stats: int | None = None  # iokernel's own stats(): connections + dedicated
    cpu_s: float | None = None  # CPU time of this whole process (all threads) while timed
    server_cpu_s: float | None = None  # CPU time of the server while timed

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds


class Clock:
    """Wall time, this process's CPU time and the server's CPU time of one timed run.

    CPU per op is much less disturbed by other load on the machine than
    throughput is, so it is recorded next to it. `server_cpu` (seconds, or
    None when unknown) is read before and after, outside the timed section.
    """

    def __init__(self, server_cpu: Callable[[], float | None] | None = None) -> None:
        self.server_cpu = server_cpu

    def start(self) -> None:
        self.srv0 = self.server_cpu() if self.server_cpu else None
        self.cpu0 = time.process_time()
        self.t0 = time.perf_counter()

    def stop(self) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.cpu0
        srv1 = self.server_cpu() if self.server_cpu else None
        self.server = None if self.srv0 is None or srv1 is None else srv1 - self.srv0

    def measurement(self, ops: int) -> Measurement:
        return Measurement(ops, self.seconds, cpu_s=self.cpu, server_cpu_s=self.server)


def timed_threads(body: Callable[[int], None], counts: Sequence[int], warm: int,
                  clock: Clock) -> None:
    """Time `body(n)` run by one thread per item of `counts` (`body(warm)`
    first, untimed), all released at once; one count: the calling thread
    itself. The first exception of any thread is raised."""
    if len(counts) == 1:
        body(warm)
        gc.collect()
        clock.start()
        body(counts[0])
        clock.stop()
        return
    barrier = threading.Barrier(len(counts) + 1)
    errors: list[Exception] = []

    def thread_main(n: int) -> None:
        try:
            body(warm)
            barrier.wait()
            body(n)
        except Exception as e:
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=thread_main, args=(n,), daemon=True) for n in counts]
    for t in threads:
        t.start()
    while barrier.n_waiting < len(counts) and not errors:  # all warmed up and parked
        time.sleep(0.001)
    gc.collect()
    clock.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    for t in threads:
        t.join()
    clock.stop()
    if errors:
        raise errors[0]


def process_tree_cpu(pid: int | None) -> float | None:
    """CPU seconds of a server started here: the process and its children (for
    PostgreSQL: postmaster, backends, checkpointer, ...) from /proc/PID/schedstat,
    in nanoseconds, plus the children it already reaped (cutime + cstime, clock
    ticks). None without a pid (a server given by URL)."""
    if pid is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            raw = Path(f"/proc/{d}/stat").read_text()
            fields = raw[raw.rindex(")") + 2:].split()
            if int(d) != pid and int(fields[1]) != pid:  # ppid
                continue
            total += int(Path(f"/proc/{d}/schedstat").read_text().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            continue
        if int(d) == pid:
            total += (int(fields[13]) + int(fields[14])) / tick  # cutime, cstime
    return total


class ClientProcesses:
    """One worker process per client: `call(client, fn, *args)` runs
    `fn(*args)` (a module-level function, so it pickles by name) in that
    client's own process and returns its result, raising what it raised.

    Measuring every client in one process let one client's leftovers load
    the others: valkey-glide keeps a timer thread that runs ~5 % of a CPU
    after its client is closed, which made every later iokernel
    measurement in the process ~10 % slower (and its CPU per op higher).
    Workers are started with "spawn" (no inherited threads) and live for
    the whole run, so start-up is paid once per client; with `fresh` each
    measurement gets a new process (and nothing of a client outlives its
    own measurement: glide's thread would otherwise still wake the CPUs
    while the next client is measured). IOKERNEL_BENCH_IN_PROCESS=1 runs
    everything in this process instead (tests that patch a client)."""

    def __init__(self, fresh: bool = False) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: dict[str, tuple[Any, Any]] = {}
        self._fresh = fresh

    def call(self, client: str, fn: Callable[..., T], *args: Any) -> T:
        if os.environ.get("IOKERNEL_BENCH_IN_PROCESS") == "1":
            # For tests that patch a client in their own process.
            return fn(*args)
        if client not in self._workers:
            parent, child = self._ctx.Pipe()
            proc = self._ctx.Process(target=_client_worker, args=(child,),
                                     name=f"bench-{client}", daemon=True)
            proc.start()
            child.close()
            self._workers[client] = (proc, parent)
        proc, conn = self._workers[client]
        conn.send((fn, args))
        try:
            ok, value = conn.recv()
        except EOFError:
            del self._workers[client]
            proc.join(5)
            raise RuntimeError(f"the {client} worker process died "
                               f"(exit code {proc.exitcode})") from None
        if self._fresh:
            self._stop(client)
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def _stop(self, client: str) -> None:
        proc, conn = self._workers.pop(client)
        with contextlib.suppress(OSError):
            conn.send(None)
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)

    def close(self) -> None:
        for client in list(self._workers):
            self._stop(client)

    def __enter__(self) -> ClientProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _client_worker(conn: Any) -> None:
    while (msg := conn.recv()) is not None:
        fn, args = msg
        try:
            conn.send((True, fn(*args)))
        except Exception as e:  # handed to the parent
            try:
                conn.send((False, e))
            except Exception:  # not picklable: its text
                conn.send((False, RuntimeError(f"{type(e).__name__}: {e}")))


@contextlib.contextmanager
def keep_awake(n: int) -> Iterator[None]:
    """N busy loops at nice 19 for the duration (tests/servers/process.py's
    cpus_kept_awake): they keep a VM's vCPUs from halting."""
    if n <= 0:
        yield
        return
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.servers.process import cpus_kept_awake

    with cpus_kept_awake(n):
        yield

