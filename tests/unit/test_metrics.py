"""Application metrics (iokernel.metrics) and the offline parts of the CLI.

The registry is process-wide and lives as long as the process, so every test
registers names of its own (``_name()``) and looks at its own series only.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from iokernel import _cli, _native, _top, metrics

ROOT = Path(__file__).resolve().parents[2]


def _name(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def _families(text: str | None = None) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text or metrics.render())}


def _samples(name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """sample name + sorted labels -> value, for one family, from render()."""
    out = {}
    for fam in text_string_to_metric_families(metrics.render()):
        for s in fam.samples:
            if s.name == name or s.name.startswith(name + "_"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


# ------------------------------------------------------------------ counters
def test_counter_inc_and_get() -> None:
    n = _name("c") + "_total"
    c = metrics.counter(n, "a counter")
    assert c.get() == 0
    c.inc()
    c.inc(2.5)
    assert c.get() == 3.5
    assert _samples(n)[(n, ())] == 3.5
    fam = _families()[n.removesuffix("_total")]
    assert fam.type == "counter"
    assert fam.documentation == "a counter"


def test_counter_cannot_go_down() -> None:
    c = metrics.counter(_name("c"), "x")
    with pytest.raises(ValueError, match="only go up"):
        c.inc(-1)
    with pytest.raises(ValueError):
        c.inc(float("nan"))
    assert c.get() == 0
    lc = metrics.counter(_name("c"), "x", labels=("k",))
    with pytest.raises(ValueError, match="only go up"):
        lc.labels("a").inc(-0.5)
    # a counter has no set()/dec()
    assert not hasattr(c, "set") and not hasattr(c, "dec")


def test_labels_by_position_and_by_name_are_the_same_series() -> None:
    n = _name("req") + "_total"
    c = metrics.counter(n, "requests", labels=("method", "code"))
    c.labels("GET", "200").inc()
    c.labels(method="GET", code="200").inc(2)
    c.labels(code="200", method="GET").inc(3)
    c.labels("POST", 500).inc()  # values are str()-ed
    assert c.labels("GET", "200") is c.labels(method="GET", code="200")
    assert c.labels("GET", "200").get() == 6
    s = _samples(n)
    assert s[(n, (("code", "200"), ("method", "GET")))] == 6
    assert s[(n, (("code", "500"), ("method", "POST")))] == 1


def test_wrong_labels_are_errors() -> None:
    c = metrics.counter(_name("c"), "x", labels=("a", "b"))
    with pytest.raises(ValueError):
        c.labels("only-one")
    with pytest.raises(ValueError):
        c.labels("1", "2", "3")
    with pytest.raises(ValueError, match="missing label"):
        c.labels(a="1")
    with pytest.raises(ValueError):
        c.labels(a="1", b="2", c="3")
    with pytest.raises(ValueError, match="missing label"):
        c.labels(a="1", wrong="2")
    with pytest.raises(ValueError, match="not both"):
        c.labels("1", b="2")
    # a labelled family has no series of its own
    with pytest.raises(ValueError, match=r"labels\(\.\.\.\)"):
        c.inc()
    # no labels declared: labels() with values is an error
    plain = metrics.counter(_name("c"), "x")
    with pytest.raises(ValueError):
        plain.labels("x")


def test_invalid_names_are_errors() -> None:
    with pytest.raises(ValueError, match="invalid metric name"):
        metrics.counter("9starts_with_digit", "x")
    with pytest.raises(ValueError, match="invalid metric name"):
        metrics.gauge("has-dash", "x")
    with pytest.raises(ValueError, match="invalid label name"):
        metrics.counter(_name("c"), "x", labels=("bad-label",)).labels("v")
    with pytest.raises(ValueError, match="invalid label name"):
        metrics.counter(_name("c"), "x", labels=("__reserved",)).labels("v")


def test_same_name_different_kind_is_rejected() -> None:
    n = _name("dup")
    metrics.counter(n, "first")
    with pytest.raises(ValueError, match="already exists"):
        metrics.gauge(n, "second")
    with pytest.raises(ValueError, match="already exists"):
        metrics.histogram(n, "third")
    h = _name("h")
    metrics.histogram(h, "x", buckets=(0.1, 1.0))
    with pytest.raises(ValueError, match="already exists"):
        metrics.histogram(h, "x", buckets=(0.2, 1.0))
    # the same name and kind again is the same series, not an error
    again = metrics.counter(n, "first")
    again.inc()
    assert metrics.counter(n, "first").get() == 1


# -------------------------------------------------------------------- gauges
def test_gauge_inc_dec_set() -> None:
    n = _name("g")
    g = metrics.gauge(n, "a gauge", labels=("pool",))
    a = g.labels(pool="a")
    a.set(10)
    a.inc()
    a.dec(3.5)
    assert a.get() == 7.5
    a.dec(100)
    assert a.get() == -92.5  # gauges go anywhere
    assert _families()[n].type == "gauge"


# ---------------------------------------------------------------- histograms
def test_histogram_buckets_sum_count() -> None:
    n = _name("lat")
    h = metrics.histogram(n, "latency", buckets=(0.01, 0.1, 1.0))
    for v in (0.005, 0.01, 0.05, 0.5, 5.0):
        h.observe(v)
    s = _samples(n)
    b = {float(dict(k[1])["le"]): v for k, v in s.items() if k[0] == n + "_bucket"}
    # le is inclusive, as in Prometheus: 0.01 falls in the 0.01 bucket
    assert b == {0.01: 2, 0.1: 3, 1.0: 4, math.inf: 5}
    assert s[(n + "_count", ())] == 5
    assert math.isclose(s[(n + "_sum", ())], 5.565)
    _, _, rows = _native.read_metrics()
    row = next(r for r in rows if r["name"] == n)
    assert row["kind"] == "histogram" and row["count"] == 5
    assert row["buckets"] == [(0.01, 2), (0.1, 1), (1.0, 1), (math.inf, 1)]


def test_histogram_default_buckets_and_bad_buckets() -> None:
    h = metrics.histogram(_name("h"), "x")
    h.observe(0.0003)
    _, _, rows = _native.read_metrics()
    row = next(r for r in rows if r["name"] == h.name)
    assert [b for b, _ in row["buckets"][:-1]] == list(metrics.DEFAULT_BUCKETS)
    for bad in ((), (1.0, 0.5), (0.1, 0.1), (0.1, math.inf), (math.nan,)):
        with pytest.raises(ValueError, match="buckets"):
            metrics.histogram(_name("h"), "x", buckets=bad)


def test_labelled_histogram() -> None:
    n = _name("h")
    h = metrics.histogram(n, "x", labels=("route",), buckets=(1.0,))
    h.labels("/a").observe(0.5)
    h.labels(route="/a").observe(2)
    h.labels("/b").observe(0.1)
    s = _samples(n)
    assert s[(n + "_count", (("route", "/a"),))] == 2
    le1 = next(k for k in s if k[0] == n + "_bucket" and ("route", "/a") in k[1]
               and float(dict(k[1])["le"]) == 1.0)
    assert s[le1] == 1
    assert s[(n + "_count", (("route", "/b"),))] == 1


def test_label_values_are_escaped() -> None:
    n = _name("esc")
    c = metrics.counter(n, 'help with "quotes" and \\ backslash\nnewline', labels=("v",))
    nasty = 'a"b\\c\nd}e,f=g'
    c.labels(nasty).inc()
    fam = _families()[n]
    (sample,) = [s for s in fam.samples if s.name.startswith(n)]
    assert sample.labels == {"v": nasty}
    assert sample.value == 1


def test_threads_increment_without_losing_updates() -> None:
    c = metrics.counter(_name("c"), "x")
    h = metrics.histogram(_name("h"), "x", buckets=(1.0,))

    def work() -> None:
        for _ in range(20_000):
            c.inc()
            h.observe(0.5)

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert c.get() == 80_000
    _, _, rows = _native.read_metrics()
    row = next(r for r in rows if r["name"] == h.name)
    assert row["count"] == 80_000 and row["value"] == 40_000


def _all_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_render_parses_and_path_is_named_by_pid() -> None:
    name = _name("c")
    metrics.counter(name, "x").inc()
    text = metrics.render()
    mine = _all_samples(text)  # parses
    p = metrics.path()
    if p is None:
        pytest.fail(f"no metrics file: {_native.metrics_file_error()}")
    assert Path(p).name == f"{os.getpid()}.metrics"
    assert Path(p).stat().st_mode & 0o777 == 0o600
    # The file holds what render() shows: every series, and our counter's
    # value. (Kernel series of clients that other tests left open keep
    # moving — heartbeats — so their values may differ between two reads.)
    theirs = _all_samples(metrics.render(p))
    assert mine.keys() <= theirs.keys()
    ours = [k for k in mine if k[0] == f"{name}_total"]
    assert ours and all(theirs[k] == mine[k] == 1 for k in ours)


def test_metrics_dir_env_and_cleanup_at_exit() -> None:
    """IOKERNEL_METRICS_DIR picks the directory; a clean exit removes the file."""
    with tempfile.TemporaryDirectory(prefix="iokm") as d:
        code = textwrap.dedent(
            """
            import os, sys
            from iokernel import metrics
            metrics.counter("x_total", "x").inc()
            p = metrics.path()
            print(p, os.path.exists(p), flush=True)
            """
        )
        env = {**os.environ, "IOKERNEL_METRICS_DIR": d}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 0, out.stderr
        path, existed = out.stdout.split()
        assert Path(path).parent == Path(d)
        assert existed == "True"
        assert not Path(path).exists(), "a clean exit should remove the metrics file"
        assert _cli.metrics_dir({"IOKERNEL_METRICS_DIR": d}) == Path(d)
    assert _cli.metrics_dir({"XDG_RUNTIME_DIR": "/run/user/5"}) == Path("/run/user/5/iokernel")
    assert _cli.metrics_dir({}) == Path(f"/tmp/iokernel-{os.getuid()}")


# ------------------------------------------------------------- CLI (offline)
def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iokernel", *args],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
        env=None if env is None else {**os.environ, **env},
    )


def test_cli_metrics_of_this_process() -> None:
    n = _name("cli")
    metrics.counter(n, "seen from another process").inc(41)
    metrics.counter(n + "_x", "x", labels=("k",)).labels("v").inc()
    out = _run_cli("metrics", str(os.getpid()))
    assert out.returncode == 0, out.stderr
    fams = _families(out.stdout)
    assert fams[n].samples[0].value == 41
    # --file does the same without a pid
    p = metrics.path()
    assert p is not None
    out2 = _run_cli("metrics", "--file", p)
    assert out2.returncode == 0 and f"\n{n} 41\n" in out2.stdout


def test_cli_metrics_errors_are_clear() -> None:
    dead = _dead_pid()
    # An empty metrics directory: the default one may hold a file left by
    # an earlier process that had the same pid (killed, or a crash), which
    # the CLI rightly reads (CI saw it: pid reuse).
    with tempfile.TemporaryDirectory() as empty:
        out = _run_cli("metrics", str(dead), env={"IOKERNEL_METRICS_DIR": empty})
    assert out.returncode == 1
    assert f"no metrics file for pid {dead}" in out.stderr
    assert "--file" in out.stderr
    assert "Traceback" not in out.stderr
    with tempfile.NamedTemporaryFile() as f:
        f.write(b"not a metrics file" * 1000)
        f.flush()
        out = _run_cli("metrics", "--file", f.name)
        assert out.returncode == 1 and "not an iokernel metrics file" in out.stderr
    out = _run_cli("metrics", "--file", "/nonexistent/x.metrics")
    assert out.returncode == 1 and "cannot read" in out.stderr


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@contextlib.contextmanager
def _process_with_metrics(code: str) -> Iterator[int]:
    """The pid of a fresh process that holds only the metrics `code` makes.

    `top` does work for every service of its target; pointed at the test
    process, it would take as long as the services that the tests before it
    left there (hundreds after the integration tests: over 30 s on a busy
    machine), which no test here controls."""
    prog = "\n".join([
        "import sys",
        "from iokernel import metrics",
        textwrap.dedent(code),
        "print('ready', flush=True)",
        "sys.stdin.read()",  # until the test is done
    ])
    p = subprocess.Popen([sys.executable, "-c", prog], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert p.stdin is not None and p.stdout is not None
    try:
        assert p.stdout.readline().strip() == "ready"
        yield p.pid
    finally:
        p.stdin.close()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def test_cli_top_once() -> None:
    n, hn = _name("topc"), _name("toph")
    with _process_with_metrics(f"""
        metrics.counter({n!r}, "x").inc(5)
        metrics.histogram({hn!r}, "x", buckets=(0.001, 0.01, 0.1)).observe(0.005)
    """) as pid:
        buf = io.StringIO()
        rc = _cli.main(["top", str(pid), "--once", "--interval", "0.05", "--no-admin"], out=buf)
    assert rc == 0
    text = buf.getvalue()
    assert f"pid {pid}" in text
    assert "APPLICATION METRICS" in text
    assert n in text and hn in text
    assert "\x1b[" not in text  # not a tty: no escape codes


def test_cli_top_iterations_in_subprocess() -> None:
    n = _name("topsub")
    with _process_with_metrics(f"metrics.counter({n!r}, 'x').inc(3)") as pid:
        out = _run_cli("top", str(pid), "--iterations", "2", "--interval", "0.05", "--no-admin")
    assert out.returncode == 0, out.stderr
    assert n in out.stdout
    assert out.stdout.count("iokernel top — pid") == 2
    assert "rates averaged since start" in out.stdout
    assert "rates over the last interval" in out.stdout


# ------------------------------------------------------------- top internals
def test_parse_labels() -> None:
    assert _top.parse_labels('service="redis://h:1/0",kind="timeout"') == {
        "service": "redis://h:1/0", "kind": "timeout"}
    assert _top.parse_labels(r'a="x\"y\\z\nw"') == {"a": 'x"y\\z\nw'}
    assert _top.parse_labels("") == {}


def test_quantile_interpolates_like_histogram_quantile() -> None:
    inf = math.inf
    assert _top.quantile([(1.0, 0), (inf, 0)], 0.5) is None
    # 10 observations in (0, 1]: p50 = 0.5
    r = _top.quantile([(1.0, 10), (2.0, 0), (inf, 0)], 0.5)
    assert r is not None and math.isclose(r[0], 0.5) and not r[1]
    # 10 in (1, 2]: p90 = 1.9
    r = _top.quantile([(1.0, 0), (2.0, 10), (inf, 0)], 0.9)
    assert r is not None and math.isclose(r[0], 1.9)
    # beyond the last finite bound: that bound, flagged
    assert _top.quantile([(1.0, 1), (inf, 99)], 0.99) == (1.0, True)
    assert _top.fmt_q((1.0, True)) == ">1s"
    assert _top.fmt_seconds(0.00012) == "120µs"
    assert _top.fmt_seconds(0.0123) == "12.3ms"
    assert _top.fmt_bytes(2048) == "2.0KiB"


def _row(name: str, kind: str, labels: str, value: float,
         buckets: list[tuple[float, int]] | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {"name": name, "help": "", "kind": kind, "kernel": True,
                         "labels": labels, "value": value}
    if buckets is not None:
        r["buckets"] = buckets
        r["count"] = sum(n for _, n in buckets)
    return r


def _snap(t: float, rows: list[dict[str, Any]]) -> _top.Snapshot:
    return _top.Snapshot(t, 4242, 0, {(r["name"], r["labels"]): r for r in rows})


def test_top_frame_for_a_service() -> None:
    svc = 'service="redis://127.0.0.1:6379/0"'
    inf = math.inf

    def rows(reqs: int, timeouts: int, net: int, pick: int) -> list[dict[str, Any]]:
        return [
            _row("iokernel_requests_total", "counter", svc, reqs),
            _row("iokernel_errors_total", "counter", svc + ',kind="timeout"', timeouts),
            _row("iokernel_in_flight", "gauge", svc, 7),
            _row("iokernel_queued", "gauge", svc, 2),
            _row("iokernel_connections", "gauge", svc + ',address="127.0.0.1:6379"', 1),
            _row("iokernel_bytes_read_total", "counter", svc + ',address="127.0.0.1:6379"',
                 reqs * 10),
            _row("iokernel_network_seconds", "histogram", svc,
                 0.0, [(0.001, net), (0.01, 0), (inf, 0)]),
            _row("iokernel_pickup_seconds", "histogram", svc,
                 0.0, [(0.001, 0), (0.5, pick), (inf, 0)]),
        ]

    prev = _snap(10.0, rows(1000, 0, 1000, 1000))
    now = _snap(12.0, rows(3000, 4, 3000, 3000))
    status = {"services": [{"name": "redis://127.0.0.1:6379/0", "health": "up",
                            "last_error": None, "limits": {"max_in_flight": 4096,
                                                           "max_queued": 16384},
                            "connections": [{"id": 1, "address": "127.0.0.1:6379",
                                             "dedicated": False, "in_flight": 7,
                                             "age_s": 75.0, "bytes_in": 2048,
                                             "bytes_out": 10}]}]}
    text = _top.render_frame(now, prev, path="/x", state="running", status=status)
    assert "redis://127.0.0.1:6379/0" in text
    assert "health up" in text
    assert "1,000/s" in text            # (3000-1000) requests / 2 s
    assert "timeout 2/s" in text        # 4 timeouts / 2 s
    assert "in flight 7" in text and "queued 2" in text and "connections 1" in text
    assert "bytes in 9.8KiB/s" in text  # 20000 B / 2 s
    assert "conn #1 127.0.0.1:6379" in text and "age 1m15s" in text
    net_line = next(line for line in text.splitlines() if line.strip().startswith("network"))
    pick_line = next(line for line in text.splitlines() if line.strip().startswith("pickup"))
    assert "n=2000 last interval" in net_line and "500µs" in net_line
    assert "250ms" in pick_line  # p50 of (0.001, 0.5]
    # a stopped process says so; since-start view without prev
    text = _top.render_frame(now, None, path="/x", state="stopped")
    assert "stopped" in text and "rates averaged since start" in text


# ----------------------------------------------------- admin client (offline)
class _FakeAdmin:
    """A one-shot-per-connection HTTP server on a unix socket."""

    def __init__(self, path: str, body: bytes, status: int = 200, delay: float = 0.0,
                 chunked: bool = False) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.body, self.status, self.delay, self.chunked = body, status, delay, chunked
        self.requests: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with c:
                c.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                if self.stop.wait(self.delay):
                    return
                if self.chunked:
                    payload = b"".join(
                        b"%x\r\n%s\r\n" % (len(p), p)
                        for p in (self.body[:5], self.body[5:]) if p
                    ) + b"0\r\n\r\n"
                    head = b"Transfer-Encoding: chunked\r\n"
                else:
                    payload = self.body
                    head = b"Content-Length: %d\r\n" % len(payload)
                try:
                    c.sendall(b"HTTP/1.1 %d X\r\n%sConnection: close\r\n\r\n%s"
                              % (self.status, head, payload))
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def short_dir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="iok") as d:  # short: AF_UNIX path limit
        yield d


def test_cli_stacks_through_address(short_dir: str) -> None:
    path = os.path.join(short_dir, "a.sock")
    srv = _FakeAdmin(path, b'Thread 0x1 (most recent call first):\n  File "x.py", line 1 in f\n')
    try:
        buf = io.StringIO()
        assert _cli.main(["stacks", "--address", f"unix:{path}"], out=buf) == 0
        assert "most recent call first" in buf.getvalue()
        assert srv.requests[0].startswith(b"GET /stacks HTTP/1.1\r\n")
    finally:
        srv.close()


def test_http_get_chunked_and_errors(short_dir: str) -> None:
    path = os.path.join(short_dir, "b.sock")
    srv = _FakeAdmin(path, b'{"pid": 1, "services": []}', chunked=True)
    try:
        status, _headers, body = _cli.http_get(f"unix:{path}", "/status", 2)
        assert status == 200 and body == b'{"pid": 1, "services": []}'
    finally:
        srv.close()
    slow = _FakeAdmin(os.path.join(short_dir, "c.sock"), b"x", delay=5)
    try:
        with pytest.raises(_cli.AdminError, match="did not answer"):
            _cli.http_get(f"unix:{slow.path}", "/stacks", 0.2)
    finally:
        slow.close()
    with pytest.raises(_cli.AdminError, match="no admin socket"):
        _cli.http_get(f"unix:{short_dir}/none.sock", "/stacks", 1)
    stale = os.path.join(short_dir, "stale.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(stale)
    s.close()  # bound, never listened: connect is refused
    with pytest.raises(_cli.AdminError, match="nothing is listening"):
        _cli.http_get(f"unix:{stale}", "/stacks", 1)


def test_parse_address() -> None:
    assert _cli.parse_address("unix:/a/b.sock") == ("unix", "/a/b.sock")
    assert _cli.parse_address("/a/b.sock") == ("unix", "/a/b.sock")
    assert _cli.parse_address("tcp:127.0.0.1:9000") == ("tcp", ("127.0.0.1", 9000))
    assert _cli.parse_address("http://127.0.0.1:9000/") == ("tcp", ("127.0.0.1", 9000))
    assert _cli.parse_address("tcp:[::1]:9000") == ("tcp", ("::1", 9000))
    with pytest.raises(_cli.CLIError):
        _cli.parse_address("nonsense")


def test_cli_stacks_without_endpoint_says_how_to_enable_it() -> None:
    # this test process may or may not serve an admin endpoint; a dead pid never does
    out = _run_cli("stacks", str(_dead_pid()), "--timeout", "1")
    assert out.returncode == 1
    assert "IOKERNEL_ADMIN" in out.stderr and "iokernel.admin.serve()" in out.stderr
    assert "not running" in out.stderr
    assert "Traceback" not in out.stderr
