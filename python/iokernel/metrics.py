"""Application metrics in shared memory, exported with the kernel's own.

    from iokernel import metrics
    orders = metrics.counter("orders_total", "Orders placed", labels=("kind",))
    orders.labels(kind="web").inc()
    latency = metrics.histogram("handler_seconds", "Handler latency")
    latency.observe(0.012)

Every series lives in this process's metrics file (``metrics.path()``):
``inc()``/``set()``/``observe()`` are one atomic update of shared memory from
the calling thread — no call into the kernel thread, no lock, no syscall. The
admin endpoint serves them at ``/metrics`` together with the kernel's, and
``python -m iokernel metrics PID`` reads them from another process, even
while this one is stopped.
"""

from __future__ import annotations

import atexit
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from . import _native

__all__ = ["Counter", "Gauge", "Histogram", "counter", "gauge", "histogram", "path", "render"]

#: Latency buckets (seconds) used when none are given: 50 µs to 10 s.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
)

S = TypeVar("S")


class _Family(Generic[S]):
    """A named metric with fixed label names; ``labels()`` gives a series."""

    _kind = ""

    def __init__(self, name: str, help: str, labels: Sequence[str] = (),
                 buckets: Sequence[float] | None = None) -> None:
        self.name = name
        self.help = help
        self.labelnames = tuple(labels)
        self._buckets = list(buckets) if buckets is not None else None
        self._children: dict[tuple[str, ...], S] = {}
        if not self.labelnames:
            self._default: S | None = self._series(())
        else:
            self._default = None

    def _series(self, values: tuple[str, ...]) -> S:
        s: S = _native.metric_series(
            self._kind, self.name, self.help, list(zip(self.labelnames, values)), self._buckets
        )
        return s

    def labels(self, *values: Any, **by_name: Any) -> S:
        """The series for these label values (by position or by name)."""
        if not by_name:
            try:
                hit = self._children.get(values)  # the common case: seen before, as given
            except TypeError:
                hit = None  # unhashable label values
            if hit is not None:
                return hit
        if by_name:
            if values:
                raise ValueError("give label values by position or by name, not both")
            try:
                values = tuple(by_name[n] for n in self.labelnames)
            except KeyError as e:
                raise ValueError(f"{self.name}: missing label {e.args[0]!r}") from None
            if len(by_name) != len(self.labelnames):
                raise ValueError(f"{self.name}: labels are {self.labelnames}")
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            if len(key) != len(self.labelnames):
                raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {key}")
            child = self._children[key] = self._series(key)
        if not by_name:
            try:
                self._children[values] = child  # also under the values as given
            except TypeError:
                pass  # unhashable label values: only the normalised key
        return child

    def _only(self) -> S:
        if self._default is None:
            raise ValueError(f"{self.name} has labels {self.labelnames}: use .labels(...) first")
        return self._default


class Counter(_Family[_native.CounterSeries]):
    _kind = "counter"

    def inc(self, amount: float = 1.0) -> None:
        self._only().inc(amount)

    def get(self) -> float:
        return self._only().get()


class Gauge(_Family[_native.GaugeSeries]):
    _kind = "gauge"

    def inc(self, amount: float = 1.0) -> None:
        self._only().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self._only().dec(amount)

    def set(self, value: float) -> None:
        self._only().set(value)

    def get(self) -> float:
        return self._only().get()


class Histogram(_Family[_native.HistogramSeries]):
    _kind = "histogram"

    def __init__(self, name: str, help: str, labels: Sequence[str] = (),
                 buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help, labels, buckets)

    def observe(self, value: float) -> None:
        self._only().observe(value)


def _fast(family: Any) -> Any:
    # Without labels, bind the native methods straight onto the family so a
    # call is one native method call (the measured fast path).
    d = family._default
    if d is not None:
        for m in ("inc", "dec", "set", "observe", "get"):
            if hasattr(d, m):
                setattr(family, m, getattr(d, m))
    return family


def counter(name: str, help: str, labels: Sequence[str] = ()) -> Counter:
    """A counter (only goes up). Name it ``..._total``."""
    c: Counter = _fast(Counter(name, help, labels))
    return c


def gauge(name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
    """A value that goes up and down."""
    g: Gauge = _fast(Gauge(name, help, labels))
    return g


def histogram(name: str, help: str, labels: Sequence[str] = (),
              buckets: Sequence[float] = DEFAULT_BUCKETS) -> Histogram:
    """A distribution of observations (default buckets: latencies in seconds)."""
    h: Histogram = _fast(Histogram(name, help, labels, buckets))
    return h


def path() -> str | None:
    """This process's metrics file, or None if it could not be made
    (then ``_native.metrics_file_error()`` says why)."""
    return _native.metrics_path()


def render(file: str | None = None) -> str:
    """Prometheus text of a metrics file (this process's by default)."""
    return _native.render_metrics(file)


atexit.register(_native.metrics_cleanup)
