"""examples/service (the items API) as a subprocess against a real redis-server:
cache-aside miss then hit, write-through POST, /metrics in Prometheus text,
503 with a clear JSON error while Redis is down or frozen and recovery after,
HTTP edge cases, clean exit on SIGTERM. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "service" / "app.py"
CACHE_TTL = 30
REDIS_TIMEOUT = 0.5

pytestmark = pytest.mark.timeout(90)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


class Service:
    """The example service in a child process on a free loopback port."""

    def __init__(self, redis_url: str, **env: str) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url, "HOST": "127.0.0.1", "PORT": str(self.port),
            "CACHE_TTL": str(CACHE_TTL), "REDIS_TIMEOUT": str(REDIS_TIMEOUT),
            "BACKEND_DELAY": "0.005", **env,
        }
        self.log = tempfile.NamedTemporaryFile(prefix="items-service-", suffix=".log")  # noqa: SIM115
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(APP)], env=self.env, stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"service exited with {self.proc.returncode} at start:\n{self.output()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.request("GET", "/livez", timeout=1.0).status == 200:
                    return
            time.sleep(0.05)
        pytest.fail(f"service did not answer /livez within {timeout} s:\n{self.output()}")

    def request(self, method: str, path: str, body: Any = None, *,
                timeout: float = 5.0) -> Reply:
        """One request on a fresh connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            return _exchange(conn, method, path, body)
        finally:
            conn.close()

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)
            return None

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-4000:]


def _exchange(conn: http.client.HTTPConnection, method: str, path: str, body: Any) -> Reply:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    headers = {"Content-Type": "application/json"} if data is not None else {}
    t0 = time.monotonic()
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    raw = resp.read()
    return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, raw,
                 time.monotonic() - t0)


@contextlib.contextmanager
def running(redis_url: str, **env: str) -> Iterator[Service]:
    svc = Service(redis_url, **env)
    try:
        svc.start()
        yield svc
    finally:
        svc.stop()
        svc.log.close()


@pytest.fixture
def service(redis_url: str) -> Iterator[Service]:
    with running(redis_url) as svc:
        yield svc


def wait_for(svc: Service, path: str, status: int, within: float) -> Reply:
    """Poll `path` until it answers `status`; fail after `within` seconds."""
    deadline = time.monotonic() + within
    last: Reply | str = "no reply"
    while time.monotonic() < deadline:
        try:
            last = svc.request("GET", path, timeout=2.0)
            if last.status == status:
                return last
        except (OSError, http.client.HTTPException) as e:
            last = repr(e)
        time.sleep(0.1)
    pytest.fail(f"{path} did not answer {status} within {within} s; last: {last}\n{svc.output()}")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, keyed by (name, sorted labels)."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


# ------------------------------------------------------------------ happy path
def test_cache_miss_then_hit(service: Service, redis_server: RedisServer) -> None:
    first = service.request("GET", "/items/42")
    assert first.status == 200, first
    assert first.headers["content-type"] == "application/json"
    doc = first.json()
    assert doc["cached"] is False
    assert doc["item"]["id"] == "42"
    assert doc["item"]["name"] == "item 42"

    second = service.request("GET", "/items/42")
    assert second.status == 200
    assert second.json() == {"cached": True, "item": doc["item"]}

    # The cache entry is the item, with the configured TTL.
    assert json.loads(redis_server.command_raw("GET", "item:42")) == doc["item"]
    assert 0 < redis_server.command_raw("TTL", "item:42") <= CACHE_TTL


def test_items_are_deterministic_and_expire_from_cache(service: Service,
                                                      redis_server: RedisServer) -> None:
    a = service.request("GET", "/items/abc").json()
    redis_server.command_raw("DEL", "item:abc")  # as if the TTL had passed
    b = service.request("GET", "/items/abc").json()
    assert (a["cached"], b["cached"]) == (False, False)
    assert a["item"] == b["item"]


def test_post_is_write_through(service: Service, redis_server: RedisServer) -> None:
    service.request("GET", "/items/7")  # cached before the write
    r = service.request("POST", "/items/7", {"name": "seven", "price_cents": 700})
    assert r.status == 200, r
    item = r.json()["item"]
    assert item == {"id": "7", "name": "seven", "price_cents": 700, "version": 1}

    got = service.request("GET", "/items/7").json()
    assert got == {"cached": True, "item": item}
    assert json.loads(redis_server.command_raw("GET", "item:7")) == item

    # Still right after the cache entry goes: the backend has the write.
    redis_server.command_raw("DEL", "item:7")
    assert service.request("GET", "/items/7").json() == {"cached": False, "item": item}


def test_bad_requests_get_json_errors(service: Service) -> None:
    cases = [
        ("POST", "/items/1", b"{not json", 400, "bad_json"),
        ("POST", "/items/1", [1, 2], 400, "bad_json"),
        ("GET", "/items/" + "x" * 65, None, 400, "bad_item_id"),
        ("GET", "/items/a%20b", None, 400, "bad_item_id"),
        ("DELETE", "/items/1", None, 405, "method_not_allowed"),
        ("POST", "/healthz", b"", 405, "method_not_allowed"),
        ("GET", "/nope", None, 404, "not_found"),
    ]
    for method, path, body, status, error in cases:
        r = service.request(method, path, body)
        assert (r.status, r.json()["error"]) == (status, error), (method, path, r)
        assert r.json()["detail"]
    assert service.request("DELETE", "/items/1").headers["allow"] == "GET, POST"


def test_healthz_and_livez(service: Service) -> None:
    r = service.request("GET", "/healthz")
    assert r.status == 200
    assert r.json()["status"] == "ok" and r.json()["redis"] == "ok"
    assert service.request("GET", "/livez").json() == {"status": "ok"}


def test_metrics_parse_and_count(service: Service) -> None:
    service.request("GET", "/items/m1")   # miss
    service.request("GET", "/items/m1")   # hit
    service.request("GET", "/items/m2")   # miss
    service.request("GET", "/missing")    # 404

    r = service.request("GET", "/metrics")
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.body.decode()
    got = samples(text)
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["items_http_requests"] == "counter"
    assert families["items_http_request_duration_seconds"] == "histogram"

    def value(name: str, **labels: str) -> float:
        return got.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("items_http_requests_total", route="/items/{id}", method="GET", status="200") == 3
    assert value("items_http_requests_total", route="other", method="GET", status="404") == 1
    assert value("items_cache_lookups_total", result="hit") == 1
    assert value("items_cache_lookups_total", result="miss") == 2
    assert value("items_backend_calls_total", op="load") == 2
    assert value("items_http_request_duration_seconds_count", route="/items/{id}") == 3
    assert value("items_http_request_duration_seconds_bucket", route="/items/{id}", le="+Inf") == 3
    assert value("items_redis_up") == 1
    # Raw paths never become label values.
    assert "m1" not in text and "/missing" not in text


# ------------------------------------------------------------------ HTTP layer
def test_keep_alive_serves_several_requests_on_one_connection(service: Service) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
    try:
        conn.connect()
        assert conn.sock is not None
        local = conn.sock.getsockname()
        for i in range(5):
            r = _exchange(conn, "GET", f"/items/k{i}", None)
            assert r.status == 200 and r.headers["connection"] == "keep-alive"
        assert conn.sock is not None and conn.sock.getsockname() == local
    finally:
        conn.close()


def _raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes (then EOF), read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_malformed_requests_get_4xx_and_the_service_survives(service: Service) -> None:
    cases = {
        b"GARBAGE\r\n\r\n": b"HTTP/1.1 400 ",
        b"GET /items/1 HTTP/2.0\r\n\r\n": b"HTTP/1.1 505 ",
        b"GET /items/1 HTTP/1.1\r\nbad header\r\n\r\n": b"HTTP/1.1 400 ",
        b"POST /items/1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n": b"HTTP/1.1 501 ",
        b"POST /items/1 HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n": b"HTTP/1.1 413 ",
        b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n": b"HTTP/1.1 431 ",
        b"GET /items/1 HTTP/1.0\r\n\r\n": b"HTTP/1.1 200 ",  # 1.0: answered, then closed
    }
    for data, head in cases.items():
        out = _raw(service.port, data)
        assert out.startswith(head), (data[:60], out[:200])
        assert b"\r\nContent-Length: " in out
    assert service.request("GET", "/healthz").status == 200
    assert "Traceback" not in service.output()


def test_sigterm_stops_cleanly(redis_url: str) -> None:
    svc = Service(redis_url)
    try:
        svc.start()
        assert svc.request("GET", "/items/x").status == 200
        t0 = time.monotonic()
        assert svc.stop() == 0, svc.output()
        assert time.monotonic() - t0 < 5
        assert "stopped" in svc.output()
    finally:
        svc.stop()
        svc.log.close()


# ---------------------------------------------------------------- Redis faults
def _assert_unavailable(r: Reply, error_type: str) -> dict[str, Any]:
    assert r.status == 503, r
    assert r.headers["content-type"] == "application/json"
    assert r.headers.get("retry-after") == "1"
    doc: dict[str, Any] = r.json()
    assert doc["error"] == "redis_unavailable", doc
    assert doc["type"] == error_type, doc
    assert "Redis" in doc["detail"], doc
    return doc


def test_redis_down_gives_503_then_recovers(fresh_redis_server: RedisServer) -> None:
    srv = fresh_redis_server
    with running(srv.url()) as svc:
        assert svc.request("GET", "/items/a").json()["cached"] is False
        assert svc.request("GET", "/items/a").json()["cached"] is True

        srv.kill()
        for _ in range(3):
            for r in (svc.request("GET", "/items/a"), svc.request("POST", "/items/a", {"n": 1})):
                doc = _assert_unavailable(r, "ConnectionError")
                assert f"127.0.0.1:{srv.port}" in doc["detail"], doc  # says where
                assert r.seconds < 2.0, r  # fails fast while down, no hang
            h = svc.request("GET", "/healthz")
            assert h.status == 503 and h.json()["status"] == "unavailable", h
            assert svc.request("GET", "/livez").status == 200
            time.sleep(0.3)

        # Metrics still work while Redis is down, and count what happened.
        got = samples(svc.request("GET", "/metrics").body.decode())
        key = ("items_http_requests_total",
               (("method", "GET"), ("route", "/items/{id}"), ("status", "503")))
        assert got[key] == 3
        assert got[("items_redis_up", ())] == 0
        assert got[("items_redis_errors_total", (("type", "ConnectionError"),))] >= 9

        srv.restart()
        wait_for(svc, "/healthz", 200, within=20.0)
        # The restarted server is empty (no persistence): a miss, then a hit.
        assert svc.request("GET", "/items/a").json()["cached"] is False
        assert svc.request("GET", "/items/a").json()["cached"] is True
        assert "Traceback" not in svc.output()
        assert "redis unavailable: ConnectionError" in svc.output()


def test_frozen_redis_gives_503_timeout_not_a_hang(fresh_redis_server: RedisServer) -> None:
    srv = fresh_redis_server
    with running(srv.url()) as svc:
        assert svc.request("GET", "/items/f").status == 200
        with srv.frozen():
            r = svc.request("GET", "/items/f")
            _assert_unavailable(r, "TimeoutError")
            assert r.seconds < REDIS_TIMEOUT + 1.5, r
            h = svc.request("GET", "/healthz")
            assert h.status == 503 and h.seconds < 1.5, h
        wait_for(svc, "/items/f", 200, within=20.0)
        assert "Traceback" not in svc.output()
