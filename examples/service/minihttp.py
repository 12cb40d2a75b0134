"""A minimal HTTP/1.1 server on asyncio streams, standard library only.

Enough HTTP for a JSON API behind a load balancer, and small enough to read
in one sitting:

* request line + headers (size and count limits), a ``Content-Length`` body
  (size limit); ``Transfer-Encoding`` is refused with 501;
* keep-alive (HTTP/1.1 default, ``Connection: close`` honoured, HTTP/1.0
  closes unless it asks for keep-alive), with an idle timeout between
  requests and a time limit for reading one request;
* every response has a ``Content-Length``; a request that cannot be parsed
  gets a 4xx and the connection is closed;
* the handler's exceptions become a 500 with a short JSON body (the traceback
  goes to the log, never to the client).

Not here: chunked bodies, pipelining beyond one request at a time per
connection, TLS, HTTP/2. Put a real proxy in front for those.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

log = logging.getLogger("minihttp")

MAX_LINE = 8 * 1024        # request line or one header line
MAX_HEADERS = 100
MAX_BODY = 1024 * 1024


@dataclass
class Request:
    method: str
    path: str             # without the query string
    query: str
    version: str          # "HTTP/1.1" or "HTTP/1.0"
    headers: dict[str, str]  # names lower-cased; a repeated header keeps the last value
    body: bytes = b""

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` if it is not)."""
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode() + b"\n"
    return Response(status, body, dict(headers or {}))


def error_response(status: int, error: str, detail: str, /,
                   headers: dict[str, str] | None = None, **extra: Any) -> Response:
    """The one error shape of the API: ``{"error": CODE, "detail": TEXT, ...}``."""
    return json_response(status, {"error": error, "detail": detail, **extra}, headers)


Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class HTTPServer:
    """Serve ``handler`` on ``host:port``; ``await start()``, then ``await close()``."""

    def __init__(self, handler: Handler, host: str, port: int, *,
                 idle_timeout: float = 5.0, read_timeout: float = 10.0) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.idle_timeout = idle_timeout
        self.read_timeout = read_timeout
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self._busy: set[asyncio.Task[None]] = set()  # connections inside a handler

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=MAX_LINE, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self, grace: float = 5.0) -> None:
        """Stop accepting; let requests in progress finish (up to ``grace``
        seconds), drop idle keep-alive connections."""
        if self._server is not None:
            self._server.close()
        for t in self._conns - self._busy:
            t.cancel()
        if self._busy:
            await asyncio.wait(self._busy, timeout=grace)
        for t in self._conns:
            t.cancel()
        if self._conns:
            await asyncio.wait(self._conns, timeout=1.0)
        if self._server is not None:
            await self._server.wait_closed()

    # ------------------------------------------------------------ per connection
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            await self._serve_requests(task, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        except asyncio.CancelledError:
            pass  # server shutting down
        finally:
            self._conns.discard(task)
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            except (ConnectionError, asyncio.TimeoutError, asyncio.CancelledError):
                pass

    async def _serve_requests(self, task: asyncio.Task[None], reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> None:
        while True:
            # Wait for the first byte of the next request no longer than the
            # idle timeout; then the whole request must arrive in read_timeout.
            try:
                first = await asyncio.wait_for(reader.readexactly(1), self.idle_timeout)
            except (asyncio.TimeoutError, asyncio.IncompleteReadError):
                return  # idle keep-alive connection, or closed between requests
            try:
                req = await asyncio.wait_for(_read_request(first, reader), self.read_timeout)
            except BadRequest as e:
                await _write(writer, error_response(e.status, "bad_request", e.detail), "close")
                await _lingering_close(reader, writer)
                return
            except asyncio.TimeoutError:
                await _write(writer, error_response(408, "request_timeout",
                                                    "the request did not arrive in time"), "close")
                await _lingering_close(reader, writer)
                return

            keep_alive = _wants_keep_alive(req)
            self._busy.add(task)
            try:
                try:
                    resp = await self.handler(req)
                except Exception:
                    log.exception("handler failed: %s %s", req.method, req.path)
                    resp = error_response(500, "internal_error",
                                          "the request failed unexpectedly; see the service log")
                await _write(writer, resp, "keep-alive" if keep_alive else "close")
            finally:
                self._busy.discard(task)
            if not keep_alive or self._server is None or not self._server.is_serving():
                return


async def _read_request(first: bytes, reader: asyncio.StreamReader) -> Request:
    line = first + await _readline(reader)
    try:
        method, target, version = line.decode("ascii").split(" ")
    except (UnicodeDecodeError, ValueError):
        raise BadRequest(400, "malformed request line") from None
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequest(505, f"unsupported HTTP version {version[:16]!r}")
    if not method.isalpha() or not method.isupper() or not target.startswith("/"):
        raise BadRequest(400, "malformed request line")

    headers: dict[str, str] = {}
    while True:
        h = await _readline(reader)
        if not h:
            break
        if len(headers) >= MAX_HEADERS:
            raise BadRequest(431, f"more than {MAX_HEADERS} headers")
        name, sep, value = h.partition(b":")
        if not sep or not name or name != name.strip():
            raise BadRequest(400, "malformed header line")
        try:
            headers[name.decode("ascii").lower()] = value.strip().decode("latin-1")
        except UnicodeDecodeError:
            raise BadRequest(400, "malformed header name") from None

    if "transfer-encoding" in headers:
        raise BadRequest(501, "Transfer-Encoding is not supported; send Content-Length")
    body = b""
    if "content-length" in headers:
        cl = headers["content-length"]
        if not cl.isdigit():
            raise BadRequest(400, "invalid Content-Length")
        n = int(cl)
        if n > MAX_BODY:
            raise BadRequest(413, f"body larger than {MAX_BODY} bytes")
        body = await reader.readexactly(n)
    path, _, query = target.partition("?")
    return Request(method, path, query, version, headers, body)


async def _readline(reader: asyncio.StreamReader) -> bytes:
    """One CRLF-terminated line without its CRLF (a bare LF is accepted)."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise BadRequest(431, f"request line or header longer than {MAX_LINE} bytes") from None
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise BadRequest(400, "connection closed in the middle of the request") from None
        raise
    return line.rstrip(b"\r\n")


def _wants_keep_alive(req: Request) -> bool:
    conn = req.headers.get("connection", "").lower()
    if req.version == "HTTP/1.0":
        return "keep-alive" in conn
    return "close" not in conn


async def _lingering_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Close after an error answer without losing it: closing a socket with
    unread input sends a TCP reset, which can make the client drop the
    answer it has not read yet. So stop writing, then read and discard what
    the client still sends (up to 1 s and 1 MiB), then close."""
    if writer.can_write_eof():
        writer.write_eof()
    deadline = asyncio.get_running_loop().time() + 1.0
    left = 1 << 20
    try:
        while left > 0:
            timeout = deadline - asyncio.get_running_loop().time()
            if timeout <= 0:
                break
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            left -= len(chunk)
    except (asyncio.TimeoutError, ConnectionError):
        pass


async def _write(writer: asyncio.StreamWriter, resp: Response, connection: str) -> None:
    try:
        reason = HTTPStatus(resp.status).phrase
    except ValueError:
        reason = ""
    lines = [
        f"HTTP/1.1 {resp.status} {reason}",
        f"Content-Type: {resp.content_type}",
        f"Content-Length: {len(resp.body)}",
        f"Connection: {connection}",
        *(f"{k}: {v}" for k, v in resp.headers.items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + resp.body)
    await writer.drain()
