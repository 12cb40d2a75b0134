"""Redis and Valkey clients on the I/O kernel.

``Client`` (blocking, thread-safe) and ``AsyncClient`` (asyncio, also under
uvloop) share one command layer (``_redis_commands``) and one native service
per URL and options: every client, thread and event loop in the process that
names the same server shares one pipelined connection.

Commands that would stall or change the shared connection are handled here:
blocking pops (BLPOP, BZPOPMIN, XREAD BLOCK, ...) run on a short-lived
dedicated connection; MULTI/WATCH, SELECT, pub/sub and the like are refused
with a message saying what to use instead (``pipeline(transaction=True)``,
``dedicated()``, a database in the URL).

Pipelines: ``execute(raise_on_error=True)`` raises the first server error
(its message names the command's position); with ``raise_on_error=False``
errors are returned in place, as ``ResponseError`` instances in the list.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import _aio, _native, _options, _shared, _tls
from ._endpoints import Endpoints
from ._errors import (
    AuthenticationError,
    BusyLoadingError,
    ConnectionError,
    DataError,
    Error,
    ExecAbortError,
    InvalidResponse,
    ModuleError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    PubSubError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TimeoutError,
    WatchError,
)
from ._redis_commands import AsyncIterCommands, BitFieldOperation, SyncIterCommands
from ._redis_commands_support import shared_connection_refusal, xread_block_ms
from ._redis_idioms import (
    _BLOCKING,
    _DEFAULT,
    _NO_LIMIT,
    DictAccess,
    PipelineError,
    _checked,
    _upper,
)
from ._redis_pipeline import AsyncPipeline, Pipeline

__all__ = [
    "AsyncClient",
    "AsyncPipeline",
    "AuthenticationError",
    "BitFieldOperation",
    "BusyLoadingError",
    "Client",
    "ConnectionError",
    "DataError",
    "Error",
    "ExecAbortError",
    "InvalidResponse",
    "ModuleError",
    "NoPermissionError",
    "NoScriptError",
    "OutOfMemoryError",
    "Pipeline",
    "PipelineError",
    "PubSubError",
    "ReadOnlyError",
    "RedisError",
    "ResponseError",
    "TimeoutError",
    "WatchError",
]

Post = Callable[[Any], Any] | None

def _block_seconds(args: tuple[Any, ...]) -> float | None:
    """How long a blocking command may block on the server (None: forever)."""
    name = _upper(args[0])
    try:
        if name in (b"BLMPOP", b"BZMPOP"):
            t = float(args[1])
        elif name in (b"XREAD", b"XREADGROUP"):
            t = (xread_block_ms(args) or 0) / 1000.0
        elif name in (b"WAIT", b"WAITAOF"):
            t = float(args[-1]) / 1000.0
        else:
            t = float(args[-1])
    except (ValueError, IndexError, TypeError):
        return None
    return None if t <= 0 else t


def _needs_dedicated(args: tuple[Any, ...]) -> bool:
    name = _upper(args[0])
    if name in _BLOCKING:
        return True
    return name in (b"XREAD", b"XREADGROUP") and xread_block_ms(args) is not None


if TYPE_CHECKING:
    # For type checkers the commands are the Python methods (their
    # signatures); ClientCore's native ones take the same arguments.
    _Core = object
else:
    _Core = _native.ClientCore


class _Base(Endpoints, _Core):
    """Options and the native service, shared by both clients.

    ``ClientCore`` (native) holds ``_svc``, ``_decode`` (the text mode:
    ``decode_responses`` and ``encoding_errors`` in one int), ``_timeout``
    and ``_conn`` and implements the hottest commands (GET, SET, HGET, INCR,
    ...) without a Python frame; for anything but their plain forms it
    calls the method of the same name in ``_redis_commands`` (see
    src/python/redis/fast.rs). ``_fast_async`` tells it which client it is.
    """

    _fast_async = False

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        timeout: float | None = 10.0,
        connect_timeout: float = 5.0,
        decode_responses: bool = False,
        max_in_flight: int = 4096,
        max_queued: int = 16384,
        client_name: str | None = None,
        health_check_interval: float | None = 5.0,
        encoding: str = "utf-8",
        encoding_errors: str = "strict",
        ssl: bool | None = None,
        ssl_ca_certs: str | None = None,
        ssl_ca_path: str | None = None,
        ssl_ca_data: str | bytes | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ssl_password: str | None = None,
        ssl_ciphers: str | None = None,
        ssl_cert_reqs: Any = None,
        ssl_check_hostname: bool | None = None,
        ssl_min_version: Any = None,
        idempotent: bool = False,
        read_from: str | None = None,
        sentinel_username: str | None = None,
        sentinel_password: str | None = None,
        sentinel_ssl: bool | None = None,
        sentinel_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        """``timeout``: seconds for each command, enforced by the kernel
        (None: no limit). ``connect_timeout``: seconds to connect and
        authenticate. ``max_in_flight`` (at least 1) requests share the
        connection at once; ``max_queued`` more may wait (0: none may); past
        that calls fail at once with ``OverloadedError``.
        ``encoding``/``encoding_errors``: as redis-py's, for str arguments
        and decoded replies: UTF-8 (another encoding raises ``ValueError``)
        with one of Python's error handlers ``"strict"`` (bytes that are
        not UTF-8 raise ``UnicodeDecodeError``), ``"replace"``,
        ``"ignore"``, ``"backslashreplace"``, ``"surrogateescape"`` or
        ``"surrogatepass"``; it also applies to str arguments that UTF-8
        cannot encode (lone surrogates).
        ``health_check_interval``: PING an idle connection this often to
        notice a dead peer (None: never). ``client_name``: sent with
        ``CLIENT SETNAME`` (printable ASCII, no spaces). ``idempotent``:
        every command may run twice, so one whose connection is lost after it
        was sent is sent again instead of failing with ``ConnectionError``
        "outcome unknown"; read-only commands (GET, HGETALL, ...) always are,
        and commands never sent are always sent again (docs/architecture.md,
        "Retry safety").

        TLS: a ``rediss://`` URL (or ``ssl=True``), with redis-py's options,
        as keyword arguments or URL query parameters (keywords win):
        ``ssl_ca_certs`` (CA file), ``ssl_ca_path`` (a directory of them),
        ``ssl_ca_data`` (PEM text), else the system's CAs;
        ``ssl_certfile``/``ssl_keyfile`` (client certificate; ``ssl_password``
        for an encrypted PKCS#8 key); ``ssl_ciphers`` (``:``-separated TLS 1.2
        suites by name; TLS 1.3's are always on);
        ``ssl_cert_reqs`` (``"required"``, the default, ``"optional"``,
        which verifies too, or ``"none"``); ``ssl_check_hostname`` (default
        True unless ``ssl_cert_reqs="none"``); ``ssl_min_version``
        (``ssl.TLSVersion.TLSv1_2``, the default, or ``TLSv1_3``). A TLS
        failure raises ``iokernel.TLSError`` (``.tls_reason``).

        Sentinel: ``redis+sentinel://[user:password@]s1:26379,s2:26379/mymaster/0``
        asks those sentinels (port 26379 unless given) where master
        ``mymaster``'s primary and replicas are, subscribes to their
        ``+switch-master`` announcements and moves writes to the new
        primary as soon as one is heard (confirmed with ``ROLE``); the old
        primary gets no new request from then on. The URL's user and
        password are the data nodes'; ``sentinel_username`` /
        ``sentinel_password`` (keywords or query parameters) authenticate
        to the sentinels. A master no sentinel knows fails ``ready()`` and
        every call with ``ConnectionError`` saying so.
        ``rediss+sentinel://`` (or ``valkeys+sentinel://``): the primary and
        replicas the sentinels name are reached over TLS with the ``ssl_*``
        options, and so are the sentinels, with the same options (as
        managed services run TLS on both). A data node Sentinel gives as an
        IP address is verified against the IP addresses of its certificate
        (its IP SANs); a sentinel, against the host name the URL gives it. A
        certificate that does not fit raises ``iokernel.TLSError`` naming the
        endpoint; never plain text instead. ``sentinel_ssl=False`` talks plain
        text to the sentinels (TLS to the data nodes stays);
        ``sentinel_kwargs`` (redis-py's form: ``{"ssl_ca_certs": ...,
        "ssl_certfile": ..., "password": ...}``, or ``sentinel_ssl_<name>``
        URL query parameters) gives the sentinels options of their own,
        each replacing the data nodes' of that name (a CA option replaces
        all their CA options, a client certificate option all of those).
        When every sentinel reached fails its TLS handshake, ``ready()`` and
        calls raise ``iokernel.TLSError`` (a ``ConnectionError``;
        ``tls_reason`` the first one's) quoting each sentinel's failure and
        the option that changes it. ``ready()`` also waits until the
        client is subscribed to the failover announcements on every
        sentinel that answers (one that cannot be reached does not hold it
        past about a second), so a failover after it returns is followed.
        ``read_from``: ``"primary"`` (the default), ``"prefer_replica"``
        (replicas that are up, else the primary) or ``"replica"``: where
        read-only commands (those Redis's command table marks read-only:
        GET, HGETALL, ...; a pipeline only if all its commands are) go,
        spread by the balancer; writes always go to the primary. With a
        plain ``redis://h1,h2`` URL the roles come from the servers.

        Seconds are numbers > 0 (not 0, NaN or infinity: None says "no
        limit" where allowed); a bad value raises ``TypeError`` or
        ``ValueError`` naming the option (see ``iokernel._options``)."""
        timeout = _options.seconds_or_none("timeout", timeout, none=_NO_LIMIT)
        connect_timeout = _options.seconds("connect_timeout", connect_timeout)
        sentinel_tls, kw_user, kw_password = _tls.sentinel_params(sentinel_ssl, sentinel_kwargs)
        decode_responses = _options.flag("decode_responses", decode_responses)
        mode = _options.text_mode(
            decode_responses, encoding, encoding_errors, _native.ENCODING_ERRORS
        )
        self._svc: _native.RedisService = _shared.service(
            _native.RedisService,
            url,
            connect_timeout=connect_timeout,
            max_in_flight=_options.count("max_in_flight", max_in_flight),
            max_queued=_options.count("max_queued", max_queued, zero="no queue"),
            client_name=_options.name_text("client_name", client_name, none="no name"),
            idle_ping=_options.seconds_or_none(
                "health_check_interval", health_check_interval, none="no health checks"
            ),
            ssl=_tls.redis_params(
                ssl=ssl,
                ssl_ca_certs=ssl_ca_certs,
                ssl_ca_path=ssl_ca_path,
                ssl_ca_data=ssl_ca_data,
                ssl_certfile=ssl_certfile,
                ssl_keyfile=ssl_keyfile,
                ssl_password=ssl_password,
                ssl_ciphers=ssl_ciphers,
                ssl_cert_reqs=ssl_cert_reqs,
                ssl_check_hostname=ssl_check_hostname,
                ssl_min_version=ssl_min_version,
            ),
            idempotent=_options.flag("idempotent", idempotent),
            read_from=_options.name_text("read_from", read_from, none="the URL's or primary"),
            sentinel_username=_options.name_text(
                "sentinel_username",
                sentinel_username if sentinel_username is not None else kw_user,
                none="no sentinel user",
            ),
            sentinel_password=_options.text_or_none(
                "sentinel_password",
                sentinel_password if sentinel_password is not None else kw_password,
                none="no sentinel password",
            ),
            sentinel_ssl=sentinel_tls,
        )
        self._timeout = timeout
        self._decode = mode  # the text mode: see _options.text_mode
        self._connect_timeout = connect_timeout
        self._lease_timeout = max(timeout or 0.0, connect_timeout)
        self._conn: int | None = None

    def _bound(self, conn: int) -> Any:
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin._svc, twin._decode, twin._timeout = self._svc, self._decode, self._timeout
        twin._conn = conn
        return twin

    def _refuse(self, args: tuple[Any, ...]) -> None:
        if self._conn is None:
            why = shared_connection_refusal(args)
            if why is not None:
                raise ResponseError(why)

    def _block_timeout(self, args: tuple[Any, ...], timeout: Any = _DEFAULT) -> float | None:
        """Kernel deadline of a blocking command: how long it may block on
        the server plus the client's timeout (None if either is unbounded);
        the caller's own ``timeout=`` wins if given."""
        if timeout is not _DEFAULT:
            return timeout  # type: ignore[no-any-return]
        block = _block_seconds(args)
        if block is None or self._timeout is None:
            return None
        return block + self._timeout

    @property
    def url(self) -> str:
        """The server URL, without secrets."""
        return self._svc.name

    def stats(self) -> dict[str, int]:
        """Counters of the shared service: connections, requests, reconnects."""
        return self._svc.stats()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._svc.name}>"


class Client(_Base, SyncIterCommands, DictAccess):
    """Blocking Redis client. Thread-safe: share one across threads."""

    _queues_calls = False

    def _call(self, args: tuple[Any, ...], post: Post = None) -> Any:
        if args[0] in _BLOCKING:
            return self._blocking(args, post)
        raw = self._svc.call(args, self._decode, self._timeout, self._conn)
        return raw if post is None else post(raw)

    def _call_undecoded(self, args: tuple[Any, ...]) -> Any:
        """Binary replies (DUMP) as bytes whatever ``decode_responses`` says."""
        return self._svc.call(args, self._decode & ~1, self._timeout, self._conn)

    def _blocking(self, args: tuple[Any, ...], post: Post, timeout: Any = _DEFAULT) -> Any:
        with self.dedicated() as d:
            raw = d._svc.call(args, d._decode, d._block_timeout(args, timeout), d._conn)
        return raw if post is None else post(raw)

    def execute(self, *args: Any, timeout: Any = _DEFAULT, idempotent: bool = False) -> Any:
        """Run any command; the reply as the server sent it. Blocking
        commands get a connection of their own; commands that would change
        the shared connection are refused with what to use instead.
        ``timeout``: seconds for this command (None: no limit), instead of
        the client's. ``idempotent=True``: running it twice is harmless, so
        if its connection is lost after it was sent it is sent again (at
        most 3 times) instead of failing with "outcome unknown" (read-only
        commands always are)."""
        timeout = _checked(args, timeout)
        idem = _options.flag("idempotent", idempotent)
        if _needs_dedicated(args):
            return self._blocking(args, None, timeout)
        self._refuse(args)
        t = self._timeout if timeout is _DEFAULT else timeout
        return self._svc.call(args, self._decode, t, self._conn, idempotent=idem)

    execute_command = execute

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        """Commands queued here are sent in one write by ``execute()``.
        ``transaction=True`` (redis-py's default) wraps them in MULTI/EXEC
        (atomic on the server, safe on the shared connection since the batch
        is written whole). ``watch()`` on it works as in redis-py."""
        return Pipeline(self, transaction)

    def transaction(
        self, func: Callable[[Pipeline], Any], *watches: Any,
        value_from_callable: bool = False, watch_delay: float | None = None,
        shard_hint: Any = None,
    ) -> Any:
        """redis-py's optimistic-locking loop: WATCH ``watches``, call
        ``func(pipe)`` (reads run at once; after ``pipe.multi()`` commands
        queue), EXEC; again from the start whenever a watched key changed.
        The EXEC results, or ``func``'s value with ``value_from_callable``."""
        with self.pipeline(True) as pipe:
            while True:
                try:
                    if watches:
                        pipe.watch(*watches)
                    value = func(pipe)
                    results = pipe.execute()
                    return value if value_from_callable else results
                except WatchError:
                    if watch_delay:
                        time.sleep(watch_delay)

    @contextlib.contextmanager
    def dedicated(self) -> Iterator[Client]:
        """A connection of your own for WATCH/MULTI, blocking commands or
        SELECT; closed when the block ends."""
        if self._conn is not None:
            yield self
            return
        conn = self._svc.lease(self._lease_timeout)
        try:
            yield self._bound(conn)
        finally:
            self._svc.release(conn)

    def close(self) -> None:
        """Close this client: later calls raise ``ConnectionError``. The shared
        connection closes when no client uses it any more."""
        self._svc = _shared.CLOSED

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Base, AsyncIterCommands):
    """asyncio Redis client. Usable from several event loops and threads."""

    _queues_calls = False
    _fast_async = True

    def _call(self, args: tuple[Any, ...], post: Post = None) -> Any:
        if args[0] in _BLOCKING:
            return self._blocking(args, post)
        # Running loop, its completer, a future, the submission: one native
        # call. Sent now; the returned Call only waits (works with create_task).
        return self._svc.acall(args, post, self._decode, self._timeout, self._conn)

    def _call_undecoded(self, args: tuple[Any, ...]) -> Any:
        """Binary replies (DUMP) as bytes whatever ``decode_responses`` says."""
        return self._svc.acall(args, None, self._decode & ~1, self._timeout, self._conn)

    async def _blocking(self, args: tuple[Any, ...], post: Post, timeout: Any = _DEFAULT) -> Any:
        async with self.dedicated() as d:
            loop = asyncio.get_running_loop()
            return await d._svc.submit(
                _aio.completer(loop), loop.create_future(), args, post,
                d._decode, d._block_timeout(args, timeout), d._conn,
            )

    def execute(self, *args: Any, timeout: Any = _DEFAULT, idempotent: bool = False) -> Any:
        """Run any command; an awaitable of the reply as the server sent it
        (see ``Client.execute``)."""
        timeout = _checked(args, timeout)
        idem = _options.flag("idempotent", idempotent)
        if _needs_dedicated(args):
            return self._blocking(args, None, timeout)
        self._refuse(args)
        t = self._timeout if timeout is _DEFAULT else timeout
        loop = asyncio.get_running_loop()
        return self._svc.submit(
            _aio.completer(loop), loop.create_future(), args, None, self._decode, t, self._conn,
            idempotent=idem,
        )

    execute_command = execute

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> AsyncPipeline:
        """As ``Client.pipeline``; ``await p.execute()``."""
        return AsyncPipeline(self, transaction)

    async def transaction(
        self, func: Callable[[AsyncPipeline], Any], *watches: Any,
        value_from_callable: bool = False, watch_delay: float | None = None,
        shard_hint: Any = None,
    ) -> Any:
        """As ``Client.transaction``; ``func`` may be a coroutine function."""
        async with self.pipeline(True) as pipe:
            while True:
                try:
                    if watches:
                        await pipe.watch(*watches)
                    value = func(pipe)
                    if inspect.isawaitable(value):
                        value = await value
                    results = await pipe.execute()
                    return value if value_from_callable else results
                except WatchError:
                    if watch_delay:
                        await asyncio.sleep(watch_delay)

    @contextlib.asynccontextmanager
    async def dedicated(self) -> AsyncIterator[AsyncClient]:
        """As ``Client.dedicated``, for ``async with``."""
        if self._conn is not None:
            yield self
            return
        conn = await _shared.lease(self._svc, self._lease_timeout)
        try:
            yield self._bound(conn)
        finally:
            self._svc.release(conn)

    async def close(self) -> None:
        """As ``Client.close``."""
        self._svc = _shared.CLOSED

    aclose = close

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
