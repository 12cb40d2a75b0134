"""items: a small JSON API that reads through a Redis cache with iokernel.

    GET  /items/<id>   cache-aside: Redis first; on a miss load from the
                       backend, store in Redis with a TTL; "cached": true/false
    POST /items/<id>   write-through: store in the backend, then in Redis
    GET  /healthz      readiness: PINGs Redis with a short timeout (200 / 503)
    GET  /livez        liveness: the process answers (never looks at Redis)
    GET  /metrics      Prometheus text of this process (iokernel.metrics)

When Redis cannot be used the API answers 503 with a JSON body that names the
problem (``{"error": "redis_unavailable", "detail": "...", "type":
"ConnectionError"}``) and a ``Retry-After`` header: fast, never a hang,
never a traceback. Recovery needs nothing: iokernel reconnects on its own.

Configuration (environment):
    REDIS_URL      redis://127.0.0.1:6379/0
    HOST, PORT     127.0.0.1, 8080
    CACHE_TTL      seconds an item stays cached (60)
    REDIS_TIMEOUT  seconds for one Redis command (0.5)
    HEALTH_TIMEOUT seconds for the /healthz PING (0.25)
    BACKEND_DELAY  seconds the simulated backend takes per load or store (0.02)
    LOG_LEVEL      INFO

Run: ``REDIS_URL=redis://127.0.0.1:6379/0 python examples/service/app.py``.
Standard library + iokernel only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
import time
import zlib
from typing import Any

# minihttp.py sits next to this file (the script's directory is on sys.path).
from minihttp import HTTPServer, Request, Response, error_response, json_response

import iokernel
from iokernel import metrics, redis

log = logging.getLogger("items")


# ------------------------------------------------------------------ config
def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number") from None


class Config:
    def __init__(self) -> None:
        self.redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        self.host = os.environ.get("HOST", "127.0.0.1")
        self.port = int(_env_float("PORT", 8080))
        self.cache_ttl = int(_env_float("CACHE_TTL", 60))
        self.redis_timeout = _env_float("REDIS_TIMEOUT", 0.5)
        self.health_timeout = _env_float("HEALTH_TIMEOUT", 0.25)
        self.backend_delay = _env_float("BACKEND_DELAY", 0.02)
        if self.cache_ttl <= 0:
            raise SystemExit("CACHE_TTL must be a positive number of seconds")


# ----------------------------------------------------------------- metrics
# Module-level families: each .labels(...) series is created once and then
# updated with one atomic add in shared memory (no lock, no kernel call).
REQUESTS = metrics.counter(
    "items_http_requests_total", "HTTP requests by route, method and status",
    labels=("route", "method", "status"))
LATENCY = metrics.histogram(
    "items_http_request_duration_seconds", "Time to answer a request, by route",
    labels=("route",))
IN_FLIGHT = metrics.gauge("items_http_requests_in_flight", "Requests being handled now")
CACHE = metrics.counter(
    "items_cache_lookups_total", "Cache lookups by result (hit, miss, error)",
    labels=("result",))
REDIS_ERRORS = metrics.counter(
    "items_redis_errors_total", "Redis calls that failed, by error class", labels=("type",))
REDIS_UP = metrics.gauge("items_redis_up", "1 if the last Redis call succeeded, else 0")
BACKEND = metrics.counter(
    "items_backend_calls_total", "Calls to the (simulated) backend", labels=("op",))


# ----------------------------------------------------------------- backend
class Backend:
    """Stands in for the slow system of record (a database, another service).

    Items nobody wrote are computed from their id, so every id exists and
    reads are deterministic; writes are kept in memory.
    """

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.written: dict[str, dict[str, Any]] = {}

    async def load(self, item_id: str) -> dict[str, Any]:
        BACKEND.labels(op="load").inc()
        await asyncio.sleep(self.delay)
        if item_id in self.written:
            return dict(self.written[item_id])
        h = zlib.crc32(item_id.encode())
        return {"id": item_id, "name": f"item {item_id}", "price_cents": 100 + h % 9900,
                "version": 0}

    async def store(self, item_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        BACKEND.labels(op="store").inc()
        await asyncio.sleep(self.delay)
        old = self.written.get(item_id) or await self.load(item_id)
        item = {**old, **fields, "id": item_id, "version": old["version"] + 1}
        self.written[item_id] = item
        return dict(item)


# --------------------------------------------------------------------- app
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
ITEM_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")

# What makes the cache unusable right now: answer 503, the client may retry.
REDIS_UNAVAILABLE = (iokernel.ConnectionError, iokernel.TimeoutError,
                     iokernel.OverloadedError, iokernel.ProtocolError)


class App:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        # One client for the whole process. Every request of every connection
        # shares the kernel's single Redis connection (implicit pipelining).
        self.redis = redis.AsyncClient(cfg.redis_url, timeout=cfg.redis_timeout,
                                       connect_timeout=1.0, client_name="items-service")
        self.backend = Backend(cfg.backend_delay)
        self._redis_ok: bool | None = None  # for logging state changes only

    async def handle(self, req: Request) -> Response:
        """Every request: route, handle, map iokernel errors, count and time."""
        t0 = time.perf_counter()
        route = _route(req.path)
        IN_FLIGHT.inc()
        try:
            resp = await self._dispatch(route, req)
        except iokernel.Error as e:
            resp = self._redis_failed(e)
        finally:
            IN_FLIGHT.dec()
        method = req.method if req.method in KNOWN_METHODS else "other"
        REQUESTS.labels(route=route, method=method, status=resp.status).inc()
        LATENCY.labels(route=route).observe(time.perf_counter() - t0)
        return resp

    async def _dispatch(self, route: str, req: Request) -> Response:
        if route == "/items/{id}":
            item_id = req.path[len("/items/"):]
            if not ITEM_ID.fullmatch(item_id):
                return error_response(
                    400, "bad_item_id", "item ids are 1-64 characters of A-Z a-z 0-9 _ . -")
            if req.method == "GET":
                return await self.get_item(item_id)
            if req.method == "POST":
                return await self.post_item(item_id, req)
            return _not_allowed("GET, POST")
        if route == "other":
            return error_response(404, "not_found", f"no route for {req.path[:100]}")
        if req.method != "GET":
            return _not_allowed("GET")
        if route == "/healthz":
            return await self.healthz()
        if route == "/livez":
            return json_response(200, {"status": "ok"})
        return Response(200, metrics.render().encode(),
                        content_type="text/plain; version=0.0.4; charset=utf-8")

    # ------------------------------------------------------------ handlers
    async def get_item(self, item_id: str) -> Response:
        key = f"item:{item_id}"
        try:
            raw = await self.redis.get(key)
        except iokernel.Error:
            CACHE.labels(result="error").inc()
            raise
        self._redis_state(True)
        if raw is not None:
            CACHE.labels(result="hit").inc()
            return json_response(200, {"item": json.loads(raw), "cached": True})
        CACHE.labels(result="miss").inc()
        item = await self.backend.load(item_id)
        await self.redis.set(key, json.dumps(item), ex=self.cfg.cache_ttl)
        return json_response(200, {"item": item, "cached": False})

    async def post_item(self, item_id: str, req: Request) -> Response:
        try:
            fields = req.json()
        except ValueError:
            return error_response(400, "bad_json", "the body must be a JSON object")
        if not isinstance(fields, dict):
            return error_response(400, "bad_json", "the body must be a JSON object")
        # Write-through. The cached copy is dropped first: with Redis down the
        # request fails with 503 before anything changed. Then the backend
        # (the system of record) is written, then the cache.
        key = f"item:{item_id}"
        await self.redis.delete(key)
        self._redis_state(True)
        item = await self.backend.store(item_id, fields)
        try:
            await self.redis.set(key, json.dumps(item), ex=self.cfg.cache_ttl)
        except iokernel.Error as e:
            # Stored, not cached (the next GET loads it): say exactly that.
            return self._redis_failed(e, stored=True)
        return json_response(200, {"item": item, "cached": True})

    async def healthz(self) -> Response:
        t0 = time.perf_counter()
        try:
            await self.redis.execute("PING", timeout=self.cfg.health_timeout)
        except iokernel.Error as e:
            return self._redis_failed(e, status="unavailable", redis="unavailable")
        self._redis_state(True)
        return json_response(200, {
            "status": "ok", "redis": "ok",
            "redis_ping_ms": round((time.perf_counter() - t0) * 1000, 2),
        })

    # --------------------------------------------------------------- errors
    def _redis_failed(self, e: iokernel.Error, **extra: Any) -> Response:
        kind = type(e).__name__
        REDIS_ERRORS.labels(type=kind).inc()
        self._redis_state(False, e)
        if isinstance(e, REDIS_UNAVAILABLE):
            return error_response(
                503, "redis_unavailable", f"the cache (Redis) cannot be used: {e}",
                headers={"Retry-After": "1"}, type=kind, **extra)
        # A server error reply (redis.ResponseError): Redis is up but refused.
        return error_response(502, "redis_error", f"Redis refused the command: {e}",
                              type=kind, **extra)

    def _redis_state(self, ok: bool, e: Exception | None = None) -> None:
        REDIS_UP.set(1 if ok else 0)
        if ok != self._redis_ok:
            if ok:
                log.info("redis reachable (%s)", self.redis.url)
            else:
                log.warning("redis unavailable: %s: %s", type(e).__name__, e)
            self._redis_ok = ok


def _route(path: str) -> str:
    """The route template: the metrics' label, never the raw path (whose
    values are unbounded)."""
    if path.startswith("/items/"):
        return "/items/{id}"
    if path in ("/healthz", "/livez", "/metrics"):
        return path
    return "other"


def _not_allowed(allow: str) -> Response:
    return error_response(405, "method_not_allowed", f"use {allow}", headers={"Allow": allow})


# -------------------------------------------------------------------- main
async def serve(cfg: Config) -> None:
    app = App(cfg)
    server = HTTPServer(app.handle, cfg.host, cfg.port)
    await server.start()
    log.info("items service on http://%s:%d (redis %s, cache ttl %d s, iokernel %s)",
             cfg.host, server.port, app.redis.url, cfg.cache_ttl, iokernel.__version__)

    # As PID 1 in a container, SIGTERM does nothing unless a handler is set.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    log.info("shutting down: finishing requests in progress")
    await server.close(grace=5.0)
    await app.redis.close()
    log.info("stopped")


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    asyncio.run(serve(Config()))


if __name__ == "__main__":
    main()
